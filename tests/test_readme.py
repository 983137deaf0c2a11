"""README.rst's quick start runs as written (slow: it starts a LocalCluster)."""

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.model_selection import KFold

from .test_model_selection import held_out_scores

README = Path(__file__).resolve().parents[1] / "README.rst"


@pytest.mark.slow
def test_quick_start_runs():
    text = README.read_text()
    blocks = re.findall(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text)
    assert blocks, "README.rst lost its quick start"
    code = "\n".join(line[4:] for block in blocks for line in block.splitlines())
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    assert namespace["model"].n_components_ == 5
    # The Dask example: the same fit on 4 blocks, lazy labels.
    assert namespace["dask_model"].n_components_ == 5
    assert namespace["labels"].shape == (len(namespace["X"]),)
    # GridSearchCV scored each sparsity as the folds fitted here do (cv=3 is
    # three unshuffled folds), and chose the best.
    search, X = namespace["search"], namespace["X"]
    param = "sparsegaussianmixture__sparsity"
    grid = list(search.param_grid[param])
    expected = held_out_scores(search.estimator, param, grid, X, KFold(3))
    assert_allclose(search.cv_results_["mean_test_score"], expected, rtol=1e-10)
    assert search.best_params_[param] == grid[np.argmax(expected)]
