"""SoftmaxRegression: one linear layer, softmax, cross-entropy.

The forward pass (``X @ W + b``) and the backward pass (``X.T @ G`` and the
column sums of ``G``) run through BLAS GEMM in the compiled core; the loss
and its gradient by the logits come from the fused cross-entropy kernel.
"""

from __future__ import annotations

import json
import math
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
        where = os.fspath(path)
        raw = read_npz(path, {"header": None, "weight": None, "bias": None}, only=("header",))
        header = _parse_header(where, raw["header"])
        d, q, dtype = header["n_features"], header["n_classes"], np.dtype(header["dtype"])
        arrays = read_npz(path, {"header": None, "weight": ((d, q), dtype), "bias": ((q,), dtype)})
        model = cls.__new__(cls)
        model.dtype = dtype
        model.weight = np.ascontiguousarray(arrays["weight"])
        model.bias = np.ascontiguousarray(arrays["bias"])
        model.class_names = header.get("class_names")
        return model


def _blas_rows(a: np.ndarray) -> bool:
    """Can BLAS use a in place: contiguous rows that follow one another
    without overlapping?  (A broadcast's stride 0 or sliding windows need a
    copy: BLAS would read past the array.)"""
    if a.size == 0 or a.shape[0] <= 1:
        return a.shape[1] <= 1 or a.strides[1] == a.itemsize
    return (
        (a.shape[1] <= 1 or a.strides[1] == a.itemsize)
        and a.strides[0] >= a.shape[1] * a.itemsize
        and a.strides[0] % a.itemsize == 0
    )


def _parse_header(path: Any, raw: np.ndarray) -> dict:
    where = os.fspath(path)
    header = parse_json_header(where, raw)
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
    if "class_names" not in header:
        raise ModelFileError(f"{where}: the header has no class_names (null when unnamed)")
    check_class_names(where, header["class_names"], header["n_classes"])
    return header


def check_class_names(where: str, names: Any, n_classes: int) -> None:
    """A file's class_names: null, or a list of n_classes strings."""
    if names is not None and (
        not isinstance(names, list)
        or len(names) != n_classes
        or not all(isinstance(s, str) for s in names)
    ):
        raise ModelFileError(f"{where}: class_names must be null or {n_classes} strings")


def parse_json_header(where: str, raw: np.ndarray) -> Any:
    """The JSON document stored as the uint8 array ``header`` of a file."""
    if raw.ndim != 1 or raw.dtype != np.uint8:
        raise ModelFileError(f"{where}: the header is not a byte string")
    try:
        return json.loads(raw.tobytes().decode())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ModelFileError(f"{where}: the header is not valid JSON ({e})") from None


def write_npz_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """np.savez to ``path`` through :func:`csoftmax._files.atomic_write`."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def read_npz(
    path: str | os.PathLike,
    expected: dict[str, tuple[tuple[int, ...], np.dtype] | None],
    *,
    optional: Sequence[str] = (),
    only: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, read without pickle and without trusting it.

    ``expected`` maps each member (without ``.npy``) to the shape and dtype it
    must have, or to None for a small uint8 vector (a JSON header).  Members
    in ``optional`` may be absent; any other member is an error.  With
    ``only``, just those members are read (the others are only looked for),
    so a header can say what to expect of the rest.  Each
    member's .npy header is checked before its data is read, and exactly the
    declared bytes are read, so a lying or compressed-bomb file fails fast
    instead of filling memory.  Every failure is a :class:`ModelFileError`.
    """
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise ModelFileError(f"{where}: no such file") from None
    except OSError as e:
        raise ModelFileError(f"{where}: cannot be read ({e})") from None
    if magic != b"PK\x03\x04":
        raise ModelFileError(f"{where}: not an .npz file (no zip header)")
    try:
        with zipfile.ZipFile(where) as z:
            members = [n[: -len(".npy")] if n.endswith(".npy") else n for n in z.namelist()]
            required = set(expected) - set(optional)
            if len(set(members)) != len(members) or not (required <= set(members) <= set(expected)):
                raise ModelFileError(
                    f"{where}: expected the arrays {sorted(expected)}, found {sorted(members)}"
                )
            wanted = [n for n in members if only is None or n in only]
            return {name: _read_member(z, f"{name}.npy", expected[name]) for name in wanted}
    except ModelFileError as e:
        message = str(e) if str(e).startswith(where) else f"{where}: {e}"
        raise ModelFileError(message) from None
    except Exception as e:  # any failure to parse untrusted bytes is a damaged file
        raise ModelFileError(f"{where}: a damaged .npz file ({type(e).__name__}: {e})") from None


_HEADER_LIMIT = 1 << 24  # a JSON header is small; 16 MiB is already absurd


def _read_member(
    z: zipfile.ZipFile, member: str, expect: tuple[tuple[int, ...], np.dtype] | None
) -> np.ndarray:
    with z.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ModelFileError(f"{member}: .npy format version {version} is not supported")
        if expect is None:
            if dtype != np.uint8 or len(shape) != 1 or shape[0] > _HEADER_LIMIT:
                raise ModelFileError(f"{member}: expected a byte string, got {dtype} {shape}")
        elif shape != expect[0] or dtype != expect[1]:
            raise ModelFileError(
                f"{member}: holds {dtype} {shape}, expected {np.dtype(expect[1])} {expect[0]}"
            )
        nbytes = math.prod(shape) * dtype.itemsize
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise ModelFileError(f"{member}: truncated ({len(data)} of {nbytes} bytes)")
        if f.read(1):
            raise ModelFileError(f"{member}: data past the declared shape")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="C")
