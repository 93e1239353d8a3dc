"""SoftmaxRegression: one linear layer, softmax, cross-entropy.

The forward pass (``X @ W + b``) and the backward pass (``X.T @ G`` and the
column sums of ``G``) run through BLAS GEMM in the compiled core; the loss
and its gradient by the logits come from the fused cross-entropy kernel.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._arrays import as_real_array, check_out
from ._config import apply_blas_threads
from ._files import atomic_write
from .functional import cross_entropy_with_grad

__all__ = ["SoftmaxRegression", "ModelFileError"]

FORMAT = "csoftmax.SoftmaxRegression"
FORMAT_VERSION = 1
_blas_ready = False


class ModelFileError(ValueError):
    """A model file that cannot be read: missing, truncated or malformed."""


def _ensure_blas() -> None:
    global _blas_ready
    if not _blas_ready:
        _core.use_scipy_blas()
        _blas_ready = True
        apply_blas_threads()


def _model_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.type not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name}: must be at least 1, got {value}")
    return int(value)


class SoftmaxRegression:
    """A linear softmax classifier: ``p(y | x) = softmax(x @ weight + bias)``.

    Parameters
    ----------
    n_features, n_classes : int
        Input width d and number of classes q.
    dtype : float32 or float64, default float32
        The precision of the parameters and of every computation.
    init_std : float, default 0.01
        Weights start as N(0, init_std^2), the bias as zeros.
    seed : int, optional
        Seed of the initialisation.

    Attributes
    ----------
    weight : ndarray, shape (n_features, n_classes)
    bias : ndarray, shape (n_classes,)
    class_names : list of str or None
        Optional names of the classes, saved with the model.

    Examples
    --------
    >>> import numpy as np, csoftmax as cs
    >>> model = cs.SoftmaxRegression(4, 3, seed=0)
    >>> X = np.ones((2, 4), dtype=np.float32)
    >>> model.predict_proba(X).sum(axis=1)
    array([1., 1.], dtype=float32)
    >>> loss, grad_w, grad_b = model.loss_and_grad(X, [0, 2])
    >>> grad_w.shape, grad_b.shape
    ((4, 3), (3,))
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        dtype: Any = np.float32,
        init_std: float = 0.01,
        seed: int | None = None,
    ) -> None:
        d = _positive_int(n_features, "n_features")
        q = _positive_int(n_classes, "n_classes")
        self.dtype = _model_dtype(dtype)
        std = float(init_std)
        if not std >= 0 or not np.isfinite(std):
            raise ValueError(f"init_std: expected a finite value >= 0, got {init_std}")
        rng = np.random.default_rng(seed)
        self.weight = np.ascontiguousarray(rng.normal(0.0, std, (d, q)).astype(self.dtype))
        self.bias = np.zeros(q, dtype=self.dtype)
        self.class_names: list[str] | None = None

    @property
    def n_features(self) -> int:
        return self.weight.shape[0]

    @property
    def n_classes(self) -> int:
        return self.weight.shape[1]

    def __repr__(self) -> str:
        return (
            f"SoftmaxRegression(n_features={self.n_features}, n_classes={self.n_classes}, "
            f"dtype={self.dtype.name})"
        )

    # ------------------------------------------------------------ forward --
    def _inputs(self, X: Any) -> np.ndarray:
        """X as a 2-D array of the model's dtype whose rows BLAS can read."""
        x = as_real_array(X, "X")
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"X: expected shape (n, {self.n_features}), got {x.shape}")
        if x.dtype != self.dtype or not _blas_rows(x):
            x = np.ascontiguousarray(x, dtype=self.dtype)
        return x

    def logits(self, X: Any, *, out: np.ndarray | None = None) -> np.ndarray:
        """The scores ``X @ weight + bias``, shape (n, n_classes), through BLAS GEMM."""
        x = self._inputs(X)
        shape = (x.shape[0], self.n_classes)
        res = (
            np.empty(shape, self.dtype) if out is None else check_out(out, shape, self.dtype, "out")
        )
        dest = res if _blas_rows(res) else np.empty(shape, self.dtype)
        _ensure_blas()
        _core.linear_forward(x, self.weight, self.bias, dest)
        if dest is not res:
            np.copyto(res, dest)
        return res

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, the softmax of the logits."""
        from .functional import softmax

        z = self.logits(X)
        return softmax(z, out=z)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (int64)."""
        return np.argmax(self.logits(X), axis=1)

    # ----------------------------------------------------------- backward --
    def loss_and_grad(
        self, X: Any, y: Any, **cross_entropy_options: Any
    ) -> tuple[np.floating, np.ndarray, np.ndarray]:
        """The loss and its gradients by weight and bias.

        GEMM for the logits, the fused cross-entropy kernel for the loss and
        d loss / d logits (in place), GEMM for ``X.T @ G``.  Options are those
        of :func:`csoftmax.cross_entropy` (``weight``, ``ignore_index``,
        ``reduction``, ``label_smoothing``); with ``reduction="none"`` the
        gradients are those of the summed loss and the per-row losses are
        returned.
        """
        x = self._inputs(X)
        logits = self.logits(x)
        loss, grad = cross_entropy_with_grad(logits, y, grad_out=logits, **cross_entropy_options)
        grad_w = np.empty_like(self.weight)
        grad_b = np.empty_like(self.bias)
        _core.linear_backward(x, grad, grad_w, grad_b)
        return loss, grad_w, grad_b

    # --------------------------------------------------------- save, load --
    def save(self, path: str | os.PathLike) -> None:
        """Write the model to ``path`` (.npz), atomically.

        The file holds ``weight``, ``bias`` and a JSON ``header`` (format,
        version, dtype, shapes, class names); it is written to a temporary
        name in the same folder and renamed, so an interrupted save never
        leaves a partial file under ``path``.
        """
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "dtype": self.dtype.name,
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "class_names": self.class_names,
        }
        arrays = {
            "header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            "weight": self.weight,
            "bias": self.bias,
        }
        write_npz_atomically(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SoftmaxRegression:
        """Read a model written by :meth:`save`; never unpickles anything.

        Raises
        ------
        ModelFileError
            If the file is missing, truncated, or not a valid model file.
        """
        arrays = read_npz(path, ("header", "weight", "bias"))
        header = _parse_header(path, arrays["header"])
        d, q, dtype = header["n_features"], header["n_classes"], np.dtype(header["dtype"])
        for name, shape in (("weight", (d, q)), ("bias", (q,))):
            a = arrays[name]
            if a.shape != shape or a.dtype != dtype:
                raise ModelFileError(
                    f"{os.fspath(path)}: {name} has shape {a.shape} and dtype {a.dtype}, "
                    f"the header says {shape} and {dtype}"
                )
        model = cls.__new__(cls)
        model.dtype = dtype
        model.weight = np.ascontiguousarray(arrays["weight"])
        model.bias = np.ascontiguousarray(arrays["bias"])
        model.class_names = header["class_names"]
        return model


def _blas_rows(a: np.ndarray) -> bool:
    """Does a have rows BLAS can read in place (contiguous, positive stride)?"""
    return (
        (a.shape[1] <= 1 or a.strides[1] == a.itemsize)
        and a.strides[0] >= 0
        and (a.strides[0] % a.itemsize == 0)
    )


def _parse_header(path: Any, raw: np.ndarray) -> dict:
    where = os.fspath(path)
    try:
        header = json.loads(raw.astype(np.uint8).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{where}: the header is not valid JSON ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{where}: not a csoftmax SoftmaxRegression file")
    if header.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: format version {header.get('version')!r} is not supported "
            f"(this csoftmax reads version {FORMAT_VERSION})"
        )
    if header.get("dtype") not in ("float32", "float64"):
        raise ModelFileError(f"{where}: dtype {header.get('dtype')!r} is not float32 or float64")
    for key in ("n_features", "n_classes"):
        v = header.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ModelFileError(f"{where}: {key} must be a positive integer, got {v!r}")
    names = header.get("class_names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) != header["n_classes"]
        or not all(isinstance(s, str) for s in names)
    ):
        raise ModelFileError(f"{where}: class_names must be n_classes strings")
    return header


def write_npz_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to ``path`` through :func:`csoftmax._files.atomic_write`."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read_npz(path: str | os.PathLike, names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """The arrays of an .npz file (exactly ``names``, when given), read without pickle."""
    where = os.fspath(path)
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, MemoryError)
    try:
        with open(where, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise ModelFileError(f"{where}: no such file") from None
    except OSError as e:
        raise ModelFileError(f"{where}: cannot be read ({e})") from None
    if magic != b"PK\x03\x04":  # np.load would guess at .npy or pickle
        raise ModelFileError(f"{where}: not an .npz file (no zip header)")
    try:
        data = np.load(where, allow_pickle=False)
    except FileNotFoundError:
        raise ModelFileError(f"{where}: no such file") from None
    except unreadable as e:
        raise ModelFileError(f"{where}: not a readable .npz file ({e})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ModelFileError(f"{where}: not an .npz file")
    with data:
        found = set(data.files)
        if names is None:
            names = sorted(found)
        elif found != set(names):
            raise ModelFileError(
                f"{where}: expected the arrays {sorted(names)}, found {sorted(found)}"
            )
        try:
            return {name: data[name] for name in names}
        except unreadable as e:
            raise ModelFileError(f"{where}: a damaged array ({e})") from None
