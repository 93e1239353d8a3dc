"""csoftmax: softmax regression as fast as the hardware allows.

The kernels (softmax, log-softmax, logsumexp, a fused cross-entropy with its
gradient) are C with OpenMP and runtime SIMD dispatch, called with the GIL
released; the API follows NumPy's and PyTorch's conventions.

>>> import csoftmax as cs
>>> cs.softmax([[0.0, 0.0]])
array([[0.5, 0.5]])
"""


from . import _openmp, callbacks, datasets, optim  # noqa: F401 (_openmp first: it loads the C core)
from ._config import get_include, get_num_threads, set_num_threads, show_config
from .bench import bench, bench_training
from .functional import (
    accuracy,
    cross_entropy,
    cross_entropy_with_grad,
    log_softmax,
    logsumexp,
    softmax,
)
from .model import SoftmaxRegression
from .optim import SGD
from .trainer import History, Trainer

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "softmax",
    "log_softmax",
    "logsumexp",
    "cross_entropy",
    "cross_entropy_with_grad",
    "accuracy",
    "get_num_threads",
    "set_num_threads",
    "show_config",
    "get_include",
    "SoftmaxRegression",
    "SGD",
    "Trainer",
    "History",
    "callbacks",
    "datasets",
    "optim",
    "bench",
    "bench_training",
]
