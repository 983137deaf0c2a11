"""Prediction holds no second copy of its largest array.

``benchmarks/bench_predict_memory.py`` measures the memory itself, on
10,000,000 rows; these tests pin down the allocation it depends on, cheaply.
"""

import numpy as np
import pytest

from sparse_gmm import SparseGaussianMixture
from sparse_gmm.engines import TorchEngine

from .conftest import gaussian_mixture_sample


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_proba_exponentiates_in_place(monkeypatch, dtype):
    """The (n_samples, n_components) result is the engine's own buffer.

    ``torch.exp`` of the log-responsibilities (the former code) allocated a
    second such array: 1.5 GB more on 10,000,000 rows x 20 components in
    float64.
    """
    X = gaussian_mixture_sample(n_samples=2000, n_components=3, seed=4)[0]
    X = X.astype(dtype)
    model = SparseGaussianMixture(3, random_state=0, engine="torch").fit(X)
    buffers = []
    log_responsibilities = TorchEngine.log_responsibilities

    def recording(self, *args):
        buffers.append(log_responsibilities(self, *args))
        return buffers[-1]

    monkeypatch.setattr(TorchEngine, "log_responsibilities", recording)
    proba = model.predict_proba(X)
    assert proba.dtype == dtype
    assert proba.ctypes.data == buffers[0].data_ptr()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
