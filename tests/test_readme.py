"""README.rst's quick start runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.rst"


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
    assert namespace["search"].best_params_["sparsegaussianmixture__sparsity"] in (
        2,
        4,
        8,
        16,
    )
