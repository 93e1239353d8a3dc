"""Fashion-MNIST: find, verify and load it as NumPy arrays.

The data are four IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``), each either plain or gzip-compressed
(``NAME.gz``).  They are parsed with NumPy alone (no pickle, no other
dependency), and every file is verified after decompression: IDX magic,
dimensions, byte length and the SHA-256 of its content.  Any problem raises
:class:`DatasetError` (a subclass of :class:`OSError`) with a message that
names the file and says how to fix it.

With ``root=None``, :func:`load_fashion_mnist` looks in, in order:

1. ``$CSOFTMAX_DATA`` (a folder holding the four files);
2. the user cache, ``$XDG_CACHE_HOME/csoftmax/fashion-mnist`` or
   ``~/.cache/csoftmax/fashion-mnist``;
3. ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``);

and only then downloads the four ``*-ubyte.gz`` files from
:data:`FASHION_MNIST_URL` into the user cache.  A folder counts only if all
four files are there.

>>> from csoftmax.datasets import FASHION_MNIST_CLASSES
>>> FASHION_MNIST_CLASSES[0], FASHION_MNIST_CLASSES[9]
('t-shirt', 'ankle boot')
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

__all__ = [
    "DatasetError",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_URL",
    "load_fashion_mnist",
    "download_fashion_mnist",
    "read_idx",
]

PathLike = Union[str, os.PathLike]

#: The ten class names, in label order (label ``k`` is ``FASHION_MNIST_CLASSES[k]``).
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

#: Where the dataset's authors publish the four ``*-ubyte.gz`` files.
FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

#: The environment variable naming a folder that holds the four files.
ENV_VAR = "CSOFTMAX_DATA"

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

_INSTALL_HINT = "apt-get install dataset-fashion-mnist"

# name -> (SHA-256 of the decompressed file, expected IDX shape).  Files are
# listed small first, so that a broken label file is reported quickly.
_FILES: dict[str, tuple[str, tuple[int, ...]]] = {
    "t10k-labels-idx1-ubyte": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        (10000,),
    ),
    "train-labels-idx1-ubyte": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        (60000,),
    ),
    "t10k-images-idx3-ubyte": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        (10000, 28, 28),
    ),
    "train-images-idx3-ubyte": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        (60000, 28, 28),
    ),
}

_CHUNK = 1 << 20
_IDX_UBYTE = 0x08


class DatasetError(OSError):
    """A dataset file is missing, truncated, corrupted or cannot be fetched.

    A subclass of :class:`OSError` (like :class:`FileNotFoundError` and
    :class:`gzip.BadGzipFile`); the message names the file concerned and
    what to do about it.  ``path`` holds that file's path when there is one.

    Examples
    --------
    >>> issubclass(DatasetError, OSError)
    True
    """

    def __init__(self, message: str, path: PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


# ---------------------------------------------------------------------------
# IDX parsing


def _open_idx(path: Path) -> BinaryIO:
    """Open ``path`` for reading, decompressing it if it is gzip (sniffed)."""
    f = open(path, "rb")  # the caller closes it
    try:
        head = f.read(2)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def _read_idx(
    path: Path,
    expected_sha256: str | None,
    hint: str,
    expected_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    suffix = f" {hint}" if hint else ""

    def fail(reason: str) -> DatasetError:
        return DatasetError(f"{path}: {reason}.{suffix}", path)

    try:
        f = _open_idx(path)
    except FileNotFoundError:
        raise fail("no such file") from None
    except OSError as e:
        raise fail(f"cannot open it ({e.strerror or e})") from e
    raw = f.fileobj if isinstance(f, gzip.GzipFile) else f  # type: ignore[attr-defined]
    sha = hashlib.sha256()
    try:
        with raw, f:
            magic = f.read(4)
            if len(magic) < 4:
                raise fail(f"truncated IDX header ({len(magic)} bytes, expected at least 4)")
            if magic[0] != 0 or magic[1] != 0:
                raise fail(f"not an IDX file (magic 0x{magic.hex()})")
            if magic[2] != _IDX_UBYTE:
                raise fail(
                    f"unsupported IDX element type 0x{magic[2]:02x} (magic 0x{magic.hex()}); "
                    "only unsigned bytes (0x08) are supported"
                )
            ndim = magic[3]
            if ndim == 0:
                raise fail(f"IDX header declares 0 dimensions (magic 0x{magic.hex()})")
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise fail(
                    f"truncated IDX header ({4 + len(dims_raw)} bytes, "
                    f"its magic declares {ndim} dimensions, i.e. {4 + 4 * ndim} bytes)"
                )
            shape = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            expected = 1
            for d in shape:  # Python ints: a huge declared size cannot overflow
                expected *= d
            if expected_shape is not None and shape != expected_shape:
                raise fail(
                    f"its IDX header declares shape {shape}, expected {expected_shape} "
                    "(is it the right file?)"
                )
            sha.update(magic)
            sha.update(dims_raw)
            if not isinstance(f, gzip.GzipFile):
                # Plain file: compare with its size before reading anything more.
                actual = os.fstat(f.fileno()).st_size - 4 - 4 * ndim
                if actual != expected:
                    raise fail(_size_reason(shape, expected, actual))
            # Read at most one byte more than declared, so that neither a huge
            # declared shape nor a gzip bomb can make us allocate more than
            # the file really holds; reading to the end also makes gzip check
            # its CRC and length trailer.
            chunks: list[bytes] = []
            total = 0
            while total <= expected:
                chunk = f.read(min(_CHUNK, expected + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
            if total != expected:
                if total > expected:  # count the rest, in bounded chunks
                    while chunk := f.read(_CHUNK):
                        total += len(chunk)
                raise fail(_size_reason(shape, expected, total))
    except DatasetError:
        raise
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise fail(f"truncated or corrupted gzip data ({e})") from e
    except OSError as e:
        raise fail(f"cannot read it ({e.strerror or e})") from e

    out = np.empty(expected, dtype=np.uint8)
    pos = 0
    for chunk in chunks:
        sha.update(chunk)
        out[pos : pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        pos += len(chunk)
    del chunks
    if expected_sha256 is not None:
        digest = sha.hexdigest()
        if digest != expected_sha256.lower():
            raise fail(
                f"SHA-256 of its decompressed content is {digest}, expected "
                f"{expected_sha256.lower()}: the file is corrupted"
            )
    return out.reshape(shape)


def _size_reason(shape: tuple[int, ...], expected: int, actual: int) -> str:
    dims = " x ".join(str(d) for d in shape)
    if actual < expected:
        return (
            f"truncated: its IDX header declares {dims} = {expected} data bytes "
            f"but only {actual} follow"
        )
    return (
        f"{actual - expected} bytes of trailing garbage: its IDX header declares "
        f"{dims} = {expected} data bytes but {actual} follow"
    )


def read_idx(path: PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes, plain or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file.  Gzip compression is recognised by content, not by name.
    expected_sha256 : str, optional
        Hex SHA-256 of the *decompressed* file (header included); checked if
        given.

    Returns
    -------
    numpy.ndarray
        A new, writable ``uint8`` array with the shape the header declares.

    Raises
    ------
    DatasetError
        If the file is missing or unreadable, is not an IDX file of unsigned
        bytes (magic ``0x0000 08 NN``), has a truncated header, holds fewer or
        more data bytes than its header declares, is not valid gzip, or does
        not match ``expected_sha256``.  The declared size is compared with
        the bytes really there before any array is allocated.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> header = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3])  # uint8, 2 dims: 2 x 3
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "tiny-idx2-ubyte"
    ...     _ = path.write_bytes(header + bytes([1, 2, 3, 4, 5, 6]))
    ...     print(read_idx(path))
    [[1 2 3]
     [4 5 6]]
    """
    return _read_idx(Path(path), expected_sha256, "")


# ---------------------------------------------------------------------------
# Finding the files


def _cache_dir() -> Path:
    """``$XDG_CACHE_HOME/csoftmax/fashion-mnist`` or ``~/.cache/csoftmax/fashion-mnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "csoftmax" / "fashion-mnist"


def _file_in(directory: Path, name: str) -> Path | None:
    """``directory/name`` or ``directory/name.gz``, whichever is a file (plain first)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _missing(directory: Path) -> list[str]:
    return [name for name in _FILES if _file_in(directory, name) is None]


def _candidates() -> list[tuple[str, Path]]:
    """The folders ``root=None`` searches, in order, each with a description."""
    out = []
    env = os.environ.get(ENV_VAR, "")
    if env:
        out.append((f"${ENV_VAR}", Path(env).expanduser()))
    out.append(("the user cache", _cache_dir()))
    out.append(("Debian's dataset-fashion-mnist", SYSTEM_DIR))
    return out


def _fix_hint(directory: Path) -> str:
    """What to do about a bad file found in ``directory``."""
    if directory == _cache_dir():
        return (
            "Delete the corrupted cached file (it is downloaded again on the next "
            f"load_fashion_mnist()), or install the data with `{_INSTALL_HINT}`."
        )
    if directory == SYSTEM_DIR:
        return "Reinstall the data with `apt-get install --reinstall dataset-fashion-mnist`."
    env = os.environ.get(ENV_VAR, "")
    if env and Path(env).expanduser() == directory:
        return (
            f"Replace it with a good copy from {FASHION_MNIST_URL}, or unset {ENV_VAR} "
            f"to use the other locations (e.g. after `{_INSTALL_HINT}`)."
        )
    return (
        f"Replace it with a good copy from {FASHION_MNIST_URL} (or from "
        f"`{_INSTALL_HINT}`, which installs them in {SYSTEM_DIR})."
    )


def _not_found_message(searched: list[tuple[str, Path]], download: bool) -> str:
    lines = ["Fashion-MNIST not found; looked for the four files in:"]
    for what, directory in searched:
        missing = _missing(directory)
        state = "missing " + ", ".join(missing) if missing else "complete"
        lines.append(f"  {directory} ({what}): {state}")
    lines.append("To get the data, do one of:")
    lines.append(f"  - `{_INSTALL_HINT}` (Debian/Ubuntu; installs them in {SYSTEM_DIR});")
    lines.append(
        f"  - set {ENV_VAR} to a folder holding the four files "
        f"({', '.join(f'{n}[.gz]' for n in _FILES)});"
    )
    if not download:
        lines.append(
            "  - call load_fashion_mnist(download=True) or download_fashion_mnist() "
            f"to fetch them from {FASHION_MNIST_URL} into {_cache_dir()}."
        )
    return "\n".join(lines)


def _locate(root: PathLike | None, download: bool, progress: bool) -> Path:
    if root is not None:
        directory = Path(root).expanduser()
        missing = _missing(directory)
        if missing:
            files = ", ".join(str(directory / f"{n}[.gz]") for n in missing)
            raise DatasetError(
                f"{files}: no such file. Put the four Fashion-MNIST files in {directory} "
                f"(e.g. with download_fashion_mnist({str(directory)!r})), or install them "
                f"with `{_INSTALL_HINT}` and call load_fashion_mnist() without root "
                f"(or set {ENV_VAR} to a folder holding the four files).",
                directory / f"{missing[0]}",
            )
        return directory
    searched = _candidates()
    for what, directory in searched:
        missing = _missing(directory)
        if not missing:
            return directory
        if what.startswith("$"):
            warnings.warn(
                f"{ENV_VAR}={os.environ[ENV_VAR]!r} lacks {', '.join(missing)} "
                "(as NAME or NAME.gz); looking elsewhere",
                stacklevel=3,
            )
    if not download:
        raise DatasetError(_not_found_message(searched, download=False))
    return download_fashion_mnist(progress=progress)


# ---------------------------------------------------------------------------
# Downloading


class _StderrProgress:
    """A minimal progress report on stderr: the percentage, or MiB if no length."""

    def __init__(self, total: int | None, desc: str) -> None:
        self.total, self.desc, self.n, self.shown = total, desc, 0, -1

    def update(self, n: int) -> None:
        self.n += n
        if self.total:
            pct = min(100, 100 * self.n // self.total)
            if pct != self.shown:
                self.shown = pct
                sys.stderr.write(f"\r{self.desc}: {pct:3d}%")
                sys.stderr.flush()
        elif self.n // _CHUNK != self.shown:
            self.shown = self.n // _CHUNK
            sys.stderr.write(f"\r{self.desc}: {self.n / _CHUNK:.0f} MiB")
            sys.stderr.flush()

    def close(self) -> None:
        if self.shown >= 0:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _progress_bar(total: int | None, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _StderrProgress(total, desc)
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr)


def _download_file(
    url: str,
    dest: Path,
    expected_sha256: str,
    progress: bool = True,
    expected_shape: tuple[int, ...] | None = None,
) -> None:
    """Fetch ``url`` into ``dest``: a temporary name in the same folder, verified, renamed.

    ``dest`` appears only once the download is complete and its decompressed
    content matches ``expected_sha256``; on any failure the temporary file is
    removed and :class:`DatasetError` raised.
    """
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    bar = None
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                length = resp.headers.get("Content-Length")
                total = int(length) if length is not None and length.isdigit() else None
                bar = _progress_bar(total, dest.name, progress)
                received = 0
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        except OSError as e:  # urllib.error.URLError, socket errors, disk full ...
            raise DatasetError(
                f"{dest}: could not download {url} ({e}). Without a network, install "
                f"the data with `{_INSTALL_HINT}`, or set {ENV_VAR} to a folder holding "
                "the four files.",
                dest,
            ) from e
        finally:
            if bar is not None:
                bar.close()
        if total is not None and received != total:
            raise DatasetError(
                f"{dest}: incomplete download of {url} ({received} of {total} bytes). Try again.",
                dest,
            )
        try:
            _read_idx(tmp, expected_sha256, "", expected_shape)
        except DatasetError as e:
            raise DatasetError(
                f"{dest}: the file downloaded from {url} is broken ({e}). Try again.", dest
            ) from e
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def download_fashion_mnist(
    root: PathLike | None = None, *, progress: bool = True, url: str = FASHION_MNIST_URL
) -> Path:
    """Download the four Fashion-MNIST files that ``root`` lacks.

    Each file is written under a temporary name in ``root``, verified (IDX
    structure and SHA-256 of its decompressed content) and only then renamed
    to ``NAME.gz``, so an interrupted download never leaves a partial file
    under a final name.  Files already there are left alone.

    Parameters
    ----------
    root : str or os.PathLike, optional
        The folder to fill; by default the user cache,
        ``$XDG_CACHE_HOME/csoftmax/fashion-mnist`` or
        ``~/.cache/csoftmax/fashion-mnist``.
    progress : bool, default True
        Show a progress bar on stderr (tqdm's if it is installed).
    url : str
        Base URL of the four ``*-ubyte.gz`` files.

    Returns
    -------
    pathlib.Path
        The folder, now holding the four files.

    Raises
    ------
    DatasetError
        If a download fails or a downloaded file does not verify.

    Examples
    --------
    >>> download_fashion_mnist()  # doctest: +SKIP
    PosixPath('/home/me/.cache/csoftmax/fashion-mnist')
    """
    directory = _cache_dir() if root is None else Path(root).expanduser()
    base = url if url.endswith("/") else url + "/"
    for name in _missing(directory):
        sha256, shape = _FILES[name]
        _download_file(f"{base}{name}.gz", directory / f"{name}.gz", sha256, progress, shape)
    return directory


# ---------------------------------------------------------------------------
# Loading


def load_fashion_mnist(
    root: PathLike | None = None, *, download: bool = True, raw: bool = False
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load Fashion-MNIST as float32 images in [0, 1] (or raw uint8) and int64 labels.

    Parameters
    ----------
    root : str or os.PathLike, optional
        A folder holding the four files (each as ``NAME`` or ``NAME.gz``),
        used alone: no other folder is searched and nothing is downloaded.
        By default ``$CSOFTMAX_DATA``, the user cache and
        ``/usr/share/datasets/fashion-mnist`` are searched in that order; see
        the module's documentation.
    download : bool, default True
        With ``root=None``, download the files into the user cache if no
        folder has them (see :func:`download_fashion_mnist`).  With False,
        raise :class:`DatasetError` instead.
    raw : bool, default False
        Return the pixels as stored, uint8 in 0..255: a quarter of the
        memory, for training with ``scale=1/255`` (the kernels widen and
        scale the rows as they read them).

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        ``X_train`` is float32 of shape (60000, 784), ``X_test`` (10000, 784),
        pixel values scaled to [0, 1] (uint8 in 0..255 with ``raw``); ``y_*``
        are int64 labels in 0..9,
        naming :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    DatasetError
        If the files cannot be found (or downloaded), or one is truncated,
        corrupted or not what it should be; the message names the file and
        what to do.

    Examples
    --------
    >>> import csoftmax as cs
    >>> (X, y), (X_test, y_test) = cs.datasets.load_fashion_mnist()  # doctest: +SKIP
    >>> X.shape, X.dtype, y.dtype  # doctest: +SKIP
    ((60000, 784), dtype('float32'), dtype('int64'))
    >>> cs.datasets.FASHION_MNIST_CLASSES[y[0]]  # doctest: +SKIP
    'ankle boot'
    """
    directory = _locate(root, download, progress=True)
    hint = _fix_hint(directory)
    arrays: dict[str, np.ndarray] = {}
    for name, (sha256, shape) in _FILES.items():
        path = _file_in(directory, name)
        if path is None:  # removed since we looked
            raise DatasetError(f"{directory / name}[.gz]: no such file. {hint}", directory / name)
        arr = _read_idx(path, sha256, hint, expected_shape=shape)
        # Implied by the checksum, but cheap: a label must name a class.
        if name.endswith("labels-idx1-ubyte") and int(arr.max()) >= len(FASHION_MNIST_CLASSES):
            raise DatasetError(f"{path}: label {int(arr.max())} out of range 0..9. {hint}", path)
        arrays[name] = arr

    def images(name: str) -> np.ndarray:
        u8 = arrays.pop(name)
        if raw:
            return u8.reshape(len(u8), -1)
        return np.multiply(u8.reshape(len(u8), -1), np.float32(1 / 255), dtype=np.float32)

    def labels(name: str) -> np.ndarray:
        return arrays.pop(name).astype(np.int64)

    train = (images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte"))
    test = (images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte"))
    return train, test
