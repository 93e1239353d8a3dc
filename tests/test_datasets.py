"""csoftmax.datasets: the Fashion-MNIST loader, its IDX parser and downloader.

No test touches the network: an autouse fixture makes urllib's urlopen fail
the test, and the downloader's tests hand it in-memory responses instead.
Tests on the real data use Debian's ``dataset-fashion-mnist`` (or
``$CSOFTMAX_DATA``); without it they skip, or fail if
``CSOFTMAX_REQUIRE_DATA=1`` (as in CI).
"""

from __future__ import annotations

import doctest
import gzip
import hashlib
import io
import os
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from csoftmax import datasets
from csoftmax.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_URL,
    DatasetError,
    download_fashion_mnist,
    load_fashion_mnist,
    read_idx,
)

NAMES = list(datasets._FILES)
REQUIRE_DATA = os.environ.get("CSOFTMAX_REQUIRE_DATA") == "1"
ENV_DATA = os.environ.get("CSOFTMAX_DATA", "")  # read before any test unsets it
APT = "apt-get install dataset-fashion-mnist"


# ---------------------------------------------------------------------------
# Fixtures and helpers


def _need_data(*folders: str | Path) -> Path:
    for folder in folders:
        if folder and not datasets._missing(Path(folder)):
            return Path(folder)
    where = " or ".join(str(f) for f in folders if f)
    msg = f"Fashion-MNIST not found in {where} (`{APT}`)"
    if REQUIRE_DATA:
        pytest.fail(f"{msg}, and CSOFTMAX_REQUIRE_DATA=1")
    pytest.skip(msg)


@pytest.fixture(scope="module")
def real_dir() -> Path:
    """A folder holding the four real files ($CSOFTMAX_DATA or Debian's)."""
    return _need_data(ENV_DATA, datasets.SYSTEM_DIR)


@pytest.fixture(scope="module")
def system_dir() -> Path:
    return _need_data(datasets.SYSTEM_DIR)


@pytest.fixture(scope="module")
def loaded(real_dir):
    return load_fashion_mnist(root=real_dir)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No $CSOFTMAX_DATA, an empty user cache, and no network."""
    monkeypatch.delenv("CSOFTMAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def no_network(*args, **kwargs):
        pytest.fail(f"a test tried to use the network: urlopen{args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def real_file(real_dir: Path, name: str) -> Path:
    path = datasets._file_in(real_dir, name)
    assert path is not None
    return path


def real_bytes(real_dir: Path, name: str) -> bytes:
    """The decompressed content of a real file."""
    data = real_file(real_dir, name).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def real_gz(real_dir: Path, name: str) -> bytes:
    """A real file, gzip-compressed (as served by the dataset's site)."""
    data = real_file(real_dir, name).read_bytes()
    return data if data[:2] == b"\x1f\x8b" else gzip.compress(data, compresslevel=1)


def data_dir(tmp_path: Path, real_dir: Path, replace: dict, where: str = "data") -> Path:
    """A folder of links to the real files, but with ``replace``'s files
    (file name -> bytes to write under that name, or None to leave it out)."""
    folder = tmp_path / where
    folder.mkdir(parents=True)
    replaced = {n.removesuffix(".gz") for n in replace}
    for name in NAMES:
        if name not in replaced:
            src = real_file(real_dir, name)
            (folder / src.name).symlink_to(src)
    for fname, content in replace.items():
        if content is not None:
            (folder / fname).write_bytes(content)
    return folder


def idx(arr: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array."""
    arr = np.asarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + np.array(arr.shape, dtype=">u4").tobytes()
    return header + arr.tobytes()


def write(path: Path, content: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(content, mtime=0) if gz else content)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_bit(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


# ---------------------------------------------------------------------------
# The real data


def test_shapes_dtypes_and_range(loaded):
    (X, y), (X_test, y_test) = loaded
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert y.shape == (60000,) and y_test.shape == (10000,)
    assert X.dtype == np.float32 and X_test.dtype == np.float32
    assert y.dtype == np.int64 and y_test.dtype == np.int64
    for a in (X, X_test):
        assert a.flags.c_contiguous and a.flags.writeable
        assert a.min() == 0.0 and a.max() == 1.0
    assert y[0] == 9 and y_test[0] == 9  # both start with an ankle boot


def test_label_counts(loaded):
    (_, y), (_, y_test) = loaded
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 6000))
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 1000))


def test_pixels_are_bytes_over_255(loaded, real_dir):
    (_, _), (X_test, y_test) = loaded
    raw = read_idx(real_file(real_dir, "t10k-images-idx3-ubyte"))
    assert raw.shape == (10000, 28, 28) and raw.dtype == np.uint8
    np.testing.assert_array_equal(np.rint(X_test * 255).astype(np.uint8), raw.reshape(10000, 784))
    np.testing.assert_allclose(X_test[:500], raw[:500].reshape(500, 784) / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(y_test, read_idx(real_file(real_dir, "t10k-labels-idx1-ubyte")))


def test_class_names():
    assert FASHION_MNIST_CLASSES == (
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


def test_root_none_finds_the_debian_package(system_dir, monkeypatch, tmp_path):
    assert not (tmp_path / "xdg-cache").exists()  # the user cache is empty
    read = []
    real_read = datasets._read_idx
    monkeypatch.setattr(
        datasets, "_read_idx", lambda p, *a, **k: read.append(p) or real_read(p, *a, **k)
    )
    (X, y), (X_test, y_test) = load_fashion_mnist(download=False)
    assert X.shape == (60000, 784) and y_test.shape == (10000,)
    assert sorted(p.parent for p in read) == [system_dir] * 4


def test_root_none_without_xdg_uses_home_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert datasets._cache_dir() == tmp_path / "home" / ".cache" / "csoftmax" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert datasets._cache_dir() == tmp_path / "home" / ".cache" / "csoftmax" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert datasets._cache_dir() == tmp_path / "xdg" / "csoftmax" / "fashion-mnist"


def test_env_var_takes_precedence(real_dir, monkeypatch, tmp_path):
    env = data_dir(tmp_path, real_dir, {})
    data_dir(tmp_path, real_dir, {}, where="xdg-cache/csoftmax/fashion-mnist")
    monkeypatch.setenv("CSOFTMAX_DATA", str(env))
    read = []
    real_read = datasets._read_idx
    monkeypatch.setattr(
        datasets, "_read_idx", lambda p, *a, **k: read.append(p) or real_read(p, *a, **k)
    )
    (X, _), (_, y_test) = load_fashion_mnist(download=False)
    assert X.shape == (60000, 784) and y_test.shape == (10000,)
    assert [p.parent for p in read] == [env] * 4


def test_env_var_wins_even_when_broken(real_dir, monkeypatch, tmp_path):
    # A complete but corrupted $CSOFTMAX_DATA is reported, not skipped over.
    labels = gzip.compress(real_bytes(real_dir, "t10k-labels-idx1-ubyte")[:5000])
    env = data_dir(tmp_path, real_dir, {"t10k-labels-idx1-ubyte.gz": labels})
    monkeypatch.setenv("CSOFTMAX_DATA", str(env))
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(download=False)
    msg = str(e.value)
    assert str(env / "t10k-labels-idx1-ubyte.gz") in msg and "truncated" in msg
    assert "CSOFTMAX_DATA" in msg  # the fix: replace the file or unset the variable


def test_cache_comes_before_the_system_folder(real_dir, tmp_path):
    cache = data_dir(tmp_path, real_dir, {}, where="xdg-cache/csoftmax/fashion-mnist")
    assert datasets._locate(None, download=False, progress=False) == cache


def test_incomplete_env_var_falls_through_with_a_warning(real_dir, monkeypatch, tmp_path):
    env = data_dir(tmp_path, real_dir, {"train-images-idx3-ubyte": None})
    cache = data_dir(tmp_path, real_dir, {}, where="xdg-cache/csoftmax/fashion-mnist")
    monkeypatch.setenv("CSOFTMAX_DATA", str(env))
    with pytest.warns(UserWarning, match="train-images-idx3-ubyte"):
        assert datasets._locate(None, download=False, progress=False) == cache


def test_plain_files_are_read_too(real_dir, tmp_path):
    folder = data_dir(tmp_path, real_dir, {"t10k-labels-idx1-ubyte": None})
    (folder / "t10k-labels-idx1-ubyte").write_bytes(real_bytes(real_dir, "t10k-labels-idx1-ubyte"))
    assert datasets._file_in(folder, "t10k-labels-idx1-ubyte") == folder / "t10k-labels-idx1-ubyte"
    assert datasets._locate(folder, download=True, progress=False) == folder


# ---------------------------------------------------------------------------
# Broken data under an explicit root


def test_explicit_root_is_used_alone(system_dir, tmp_path):
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(root=tmp_path)  # download=True, but no download: root is explicit
    msg = str(e.value)
    for name in NAMES:
        assert str(tmp_path / name) in msg
    assert APT in msg and "CSOFTMAX_DATA" in msg and "download_fashion_mnist" in msg


def test_missing_file(real_dir, tmp_path):
    folder = data_dir(tmp_path, real_dir, {"t10k-images-idx3-ubyte": None})
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(root=folder)
    msg = str(e.value)
    assert str(folder / "t10k-images-idx3-ubyte") in msg and "no such file" in msg
    assert "train-images" not in msg and APT in msg
    assert e.value.path == folder / "t10k-images-idx3-ubyte"


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_truncated_real_file(real_dir, tmp_path, gz):
    content = real_bytes(real_dir, "train-labels-idx1-ubyte")
    fname = "train-labels-idx1-ubyte" + (".gz" if gz else "")
    cut = gzip.compress(content)[:-100] if gz else content[:-100]
    folder = data_dir(tmp_path, real_dir, {fname: cut})
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(root=folder)
    msg = str(e.value)
    assert str(folder / fname) in msg and "truncated" in msg
    assert "Replace it with a good copy" in msg and APT in msg


def test_bit_flipped_real_file(real_dir, tmp_path):
    content = flip_bit(real_bytes(real_dir, "t10k-labels-idx1-ubyte"), 5000)
    folder = data_dir(tmp_path, real_dir, {"t10k-labels-idx1-ubyte": content})
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(root=folder)
    msg = str(e.value)
    assert str(folder / "t10k-labels-idx1-ubyte") in msg and "SHA-256" in msg
    assert datasets._FILES["t10k-labels-idx1-ubyte"][0] in msg and "Replace it" in msg


def test_bit_flipped_gzip_stream(real_dir, tmp_path):
    gz = gzip.compress(real_bytes(real_dir, "t10k-labels-idx1-ubyte"))
    folder = data_dir(tmp_path, real_dir, {"t10k-labels-idx1-ubyte.gz": flip_bit(gz, len(gz) // 2)})
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz") as e:
        load_fashion_mnist(root=folder)
    assert "gzip" in str(e.value) or "SHA-256" in str(e.value)


def test_wrong_file_under_the_right_name(real_dir, tmp_path):
    train = real_file(real_dir, "train-labels-idx1-ubyte").read_bytes()
    folder = data_dir(tmp_path, real_dir, {"t10k-labels-idx1-ubyte.gz": train})
    with pytest.raises(DatasetError, match=r"shape \(60000,\), expected \(10000,\)"):
        load_fashion_mnist(root=folder)


def test_corrupted_cached_file_says_delete_it(real_dir, tmp_path):
    content = flip_bit(real_bytes(real_dir, "t10k-labels-idx1-ubyte"), 100)
    cache = data_dir(
        tmp_path,
        real_dir,
        {"t10k-labels-idx1-ubyte.gz": gzip.compress(content)},
        where="xdg-cache/csoftmax/fashion-mnist",
    )
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist()
    msg = str(e.value)
    assert (
        str(cache / "t10k-labels-idx1-ubyte.gz") in msg
        and "Delete the corrupted cached file" in msg
    )


def test_download_false_with_no_data_anywhere(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "nowhere")
    with pytest.raises(DatasetError) as e:
        load_fashion_mnist(download=False)
    msg = str(e.value)
    assert APT in msg and "CSOFTMAX_DATA" in msg and "download=True" in msg
    assert str(tmp_path / "nowhere") in msg and str(datasets._cache_dir()) in msg
    assert calls == []
    assert not (tmp_path / "xdg-cache").exists()  # nothing was created either


# ---------------------------------------------------------------------------
# read_idx on small synthetic files


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (3, 2, 4), (0, 28, 28)])
def test_read_idx_parses(tmp_path, gz, shape):
    arr = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    content = idx(arr)
    path = write(tmp_path / "x-ubyte", content, gz)
    out = read_idx(path, expected_sha256=sha256(content).upper())
    assert out.dtype == np.uint8 and out.shape == shape and out.flags.writeable
    np.testing.assert_array_equal(out, arr)
    np.testing.assert_array_equal(read_idx(str(path)), arr)


def test_read_idx_sniffs_gzip_by_content(tmp_path):
    arr = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a.gz", idx(arr), gz=False)), arr)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "b", idx(arr), gz=True)), arr)


GOOD = idx(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
BROKEN = {
    "wrong magic": (b"\x12\x34" + GOOD[2:], "not an IDX file"),
    "float elements": (GOOD[:2] + b"\x0d" + GOOD[3:], "unsupported IDX element type 0x0d"),
    "zero dimensions": (b"\x00\x00\x08\x00", "0 dimensions"),
    "empty": (b"", "truncated IDX header"),
    "truncated magic": (b"\x00\x00\x08", "truncated IDX header"),
    "truncated header": (GOOD[:10], "truncated IDX header"),
    "truncated data": (GOOD[:-1], "truncated"),
    "no data": (GOOD[:16], "truncated"),
    "trailing garbage": (GOOD + b"\x00\x00\x00", "3 bytes of trailing garbage"),
    "huge dims": (
        bytes([0, 0, 8, 3]) + np.array([2**31, 2**31, 28], ">u4").tobytes() + b"\x00" * 64,
        "truncated",
    ),
}


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("case", list(BROKEN))
def test_read_idx_rejects(tmp_path, case, gz):
    content, reason = BROKEN[case]
    path = write(tmp_path / "bad-idx3-ubyte", content, gz)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(DatasetError) as e:
            read_idx(path)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(e.value, OSError)
    assert str(e.value).startswith(f"{path}: ") and reason in str(e.value)
    assert e.value.path == path
    assert elapsed < 1.0 and peak < 4 << 20  # nothing like the declared size is allocated


def test_read_idx_checks_the_checksum(tmp_path):
    path = write(tmp_path / "x-ubyte", GOOD, gz=True)
    with pytest.raises(DatasetError, match="SHA-256") as e:
        read_idx(path, expected_sha256=sha256(flip_bit(GOOD, 20)))
    assert str(path) in str(e.value)


@pytest.mark.parametrize("how", ["cut", "flipped", "garbage after"])
def test_read_idx_rejects_broken_gzip(tmp_path, how):
    gz = gzip.compress(idx(np.tile(np.arange(256, dtype=np.uint8), 40)), mtime=0)
    broken = {
        "cut": gz[: len(gz) // 2],
        "flipped": flip_bit(gz, len(gz) // 2),
        "garbage after": gz + b"not gzip",
    }[how]
    path = tmp_path / "x.gz"
    path.write_bytes(broken)
    with pytest.raises(DatasetError, match="gzip") as e:
        read_idx(path)
    assert str(e.value).startswith(str(path))


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="no such file") as e:
        read_idx(tmp_path / "nothing")
    assert isinstance(e.value, OSError) and str(tmp_path / "nothing") in str(e.value)


# ---------------------------------------------------------------------------
# The downloader, with in-memory responses


class FakeResponse(io.BytesIO):
    """What urlopen returns: read() and headers; reads at most ``chunk`` bytes
    at a time and raises ``exc`` once ``fail_after`` bytes have been read."""

    def __init__(self, data, length=None, chunk=None, fail_after=None, exc=None, check=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}
        self.chunk, self.fail_after, self.exc, self.check = chunk, fail_after, exc, check

    def read(self, n=-1):
        if self.check is not None:
            self.check()
        if self.fail_after is not None and self.tell() >= self.fail_after:
            raise self.exc
        if self.chunk is not None:
            n = self.chunk if n is None or n < 0 else min(n, self.chunk)
        return super().read(n)


def serve(monkeypatch, responses: dict):
    """Let urlopen answer from ``responses`` (url -> callable returning a response)."""
    requested = []

    def urlopen(url, timeout=None):
        requested.append(url)
        return responses[url]()

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return requested


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


TINY = idx(np.arange(100, dtype=np.uint8) % 10)
URL = "http://example.invalid/tiny-idx1-ubyte.gz"


def test_download_renames_only_when_complete_and_verified(monkeypatch, tmp_path):
    dest = tmp_path / "dl" / "tiny-idx1-ubyte.gz"
    payload = gzip.compress(TINY)
    seen = []

    def check():  # while downloading: a temporary name beside dest, never dest itself
        assert not dest.exists()
        seen.extend(p for p in leftovers(dest.parent) if p.endswith(".part"))

    serve(monkeypatch, {URL: lambda: FakeResponse(payload, check=check)})
    datasets._download_file(URL, dest, sha256(TINY), progress=False, expected_shape=(100,))
    assert dest.read_bytes() == payload
    assert seen and all(p.startswith(".tiny-idx1-ubyte.gz.") for p in seen)
    assert leftovers(dest.parent) == ["tiny-idx1-ubyte.gz"]
    assert dest.stat().st_mode & 0o777 == 0o644


def test_download_real_file(real_dir, monkeypatch, tmp_path):
    name = "t10k-labels-idx1-ubyte"
    payload = real_gz(real_dir, name)
    url = FASHION_MNIST_URL + name + ".gz"
    serve(monkeypatch, {url: lambda: FakeResponse(payload)})
    dest = tmp_path / f"{name}.gz"
    datasets._download_file(url, dest, datasets._FILES[name][0], progress=False)
    assert dest.read_bytes() == payload and leftovers(tmp_path) == [dest.name]


def unreachable():
    raise urllib.error.URLError("no route to host")


@pytest.mark.parametrize(
    "case",
    ["connection reset", "interrupted", "short read", "bad checksum", "not gzip", "url error"],
)
def test_failed_download_leaves_nothing(monkeypatch, tmp_path, case):
    payload = gzip.compress(TINY)
    respond = {
        "connection reset": lambda: FakeResponse(
            payload, chunk=10, fail_after=20, exc=ConnectionResetError("reset by peer")
        ),
        "interrupted": lambda: FakeResponse(
            payload, chunk=10, fail_after=20, exc=KeyboardInterrupt()
        ),
        "short read": lambda: FakeResponse(payload[:30], length=len(payload)),
        "bad checksum": lambda: FakeResponse(gzip.compress(flip_bit(TINY, 50))),
        "not gzip": lambda: FakeResponse(b"<html>Not found</html>"),
        "url error": unreachable,
    }[case]
    serve(monkeypatch, {URL: respond})
    dest = tmp_path / "dl" / "tiny-idx1-ubyte.gz"
    expected = KeyboardInterrupt if case == "interrupted" else DatasetError
    with pytest.raises(expected) as e:
        datasets._download_file(URL, dest, sha256(TINY), progress=False)
    assert leftovers(dest.parent) == []  # neither dest nor a temporary file
    if expected is DatasetError:
        msg = str(e.value)
        assert msg.startswith(f"{dest}: ") and e.value.path == dest
        if case in ("connection reset", "url error"):
            assert APT in msg and "CSOFTMAX_DATA" in msg
        if case == "bad checksum":
            assert "SHA-256" in msg and URL in msg


def test_progress_without_tqdm(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    payload = gzip.compress(TINY)
    serve(monkeypatch, {URL: lambda: FakeResponse(payload, chunk=len(payload) // 2 + 1)})
    datasets._download_file(URL, tmp_path / "t.gz", sha256(TINY), progress=True)
    err = capsys.readouterr().err
    assert "t.gz:" in err and "100%" in err and err.endswith("\n")


def test_load_downloads_into_the_cache(real_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "nowhere")
    cache = datasets._cache_dir()
    cache.mkdir(parents=True)
    # One file is cached already: only the other three are fetched.
    (cache / "train-images-idx3-ubyte.gz").symlink_to(
        real_file(real_dir, "train-images-idx3-ubyte")
    )
    fetched = [n for n in NAMES if n != "train-images-idx3-ubyte"]
    payloads = {FASHION_MNIST_URL + n + ".gz": real_gz(real_dir, n) for n in fetched}
    requested = serve(monkeypatch, {u: (lambda p=p: FakeResponse(p)) for u, p in payloads.items()})
    (X, y), (X_test, y_test) = load_fashion_mnist()
    assert sorted(requested) == sorted(payloads)
    assert X.shape == (60000, 784) and y_test.shape == (10000,)
    assert leftovers(cache) == sorted(f"{n}.gz" for n in NAMES)
    # Now cached: a second call needs no network.
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("network"))
    assert datasets._locate(None, download=True, progress=False) == cache


def test_download_fashion_mnist_skips_present_files(monkeypatch, tmp_path):
    for name in NAMES:
        (tmp_path / f"{name}.gz").write_bytes(b"")  # present (checked on load, not here)
    assert download_fashion_mnist(tmp_path, progress=False) == tmp_path


# ---------------------------------------------------------------------------


def test_docstring_examples():
    result = doctest.testmod(datasets, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0 and result.failed == 0


def test_dataset_error_is_an_oserror():
    assert issubclass(DatasetError, OSError)
    assert str(DatasetError("x: broken", "x")) == "x: broken"
