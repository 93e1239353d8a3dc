"""Fuzz tests (hypothesis) of the file readers with damaged files.

Each test starts from valid files -- a model written by
``SoftmaxRegression.save``, checkpoints written by
``Trainer.save_checkpoint``, small synthetic IDX files (plain and gzip), and
Fashion-MNIST's own label file when Debian's package is installed -- and
damages them:

* byte by byte: truncated, bit-flipped, bytes inserted, deleted, zeroed,
  overwritten or duplicated, anywhere or right at a structure (zip headers,
  .npy headers, the IDX header, the gzip header);
* structurally, as a valid zip or gzip of damaged content: .npy members
  whose header declares another shape (up to 2**62 elements, products that
  overflow int64), dtype (object, complex, str, records, datetimes) or
  order, JSON headers with any key changed, removed or added, members
  missing, extra, renamed, duplicated or compressed, IDX headers declaring
  huge dimensions.

The property: ``read_idx`` either returns exactly what an independent,
obvious parser of the same bytes returns, or raises ``DatasetError`` (an
OSError); ``SoftmaxRegression.load`` and ``Trainer.load_checkpoint`` either
raise ``ModelFileError`` (a ValueError) or give a model / trainer that is
whole: the declared shapes and dtype, usable for prediction and training,
and saved and loaded again unchanged.  Nothing else may escape, nothing may
hang, and no file may make the process allocate more than a few MB (peak
RSS, reset before each example): a declared size is never taken at its word.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gzip
import io
import json
import math
import os
import resource
import struct
import tempfile
import time
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import fuzz_settings
from hypothesis import event, given, note, reject, settings
from hypothesis import strategies as st

import csoftmax as cs
from csoftmax.datasets import DatasetError, read_idx
from csoftmax.model import ModelFileError

# Shares of the long profile's 10,000 examples (see test_fuzz.py).
SCALE = {"idx": 0.6, "model_bytes": 0.4, "model_struct": 0.6, "ckpt": 0.6, "fashion": 0.3}


#: As in test_fuzz.py: with CSOFTMAX_FUZZ_KNOWN=skip, examples that hit a
#: known (reported, separately pinned) defect are skipped instead of failing.
SKIP_KNOWN = os.environ.get("CSOFTMAX_FUZZ_KNOWN", "") == "skip"


@contextlib.contextmanager
def known_errors(*matchers):
    """Under SKIP_KNOWN, an exception for which a matcher returns True
    skips the example (hypothesis.reject) instead of failing it."""
    try:
        yield
    except Exception as e:
        if SKIP_KNOWN and any(m(e) for m in matchers):
            reject()
        raise


#: Known defects of the loaders, each pinned by a test at the end of this file.
KNOWN_LOAD_ERRORS = (
    # SoftmaxRegression.load: a header without "class_names" (KeyError)
    lambda e: isinstance(e, KeyError) and e.args == ("class_names",),
    # read_npz: numpy's tokenize.TokenError for a garbled .npy header
    lambda e: isinstance(e, tokenize.TokenError),
    # a JSON header nested too deep for json.loads (RecursionError)
    lambda e: isinstance(e, RecursionError),
    # zipfile's NotImplementedError (an unknown zip version or compression
    # method) and RuntimeError (a member flagged as encrypted)
    lambda e: (
        isinstance(e, NotImplementedError)
        or (isinstance(e, RuntimeError) and "encrypted" in str(e))
    ),
)


def fuzz(name: str):
    """fuzz_settings with this test's share of the examples."""
    n = max(1, round(fuzz_settings.max_examples * SCALE[name]))
    return settings(fuzz_settings, max_examples=n)


#: Under AddressSanitizer (.ci/sanitize) a huge malloc aborts the process
#: instead of failing; there the declared sizes stay below 1 GiB.
UNDER_ASAN = (
    "libasan" in Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else False
)
HUGE = [2**40, 2**31, 2**33, 2**62, 2**63 - 1] if not UNDER_ASAN else [2**27]

#: The most the peak RSS may grow while a test reads damaged files.
RSS_BUDGET_KB = 64 * 1024


# ---------------------------------------------------------------------------
# Peak memory


def _status_kb(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """The growth of the peak RSS since start(): VmHWM, reset through
    /proc/self/clear_refs where the kernel allows it, else ru_maxrss."""

    def start(self) -> None:
        self.resettable = False
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
            self.resettable = True
        self.base_hwm = _status_kb("VmHWM")
        self.base_rss = _status_kb("VmRSS")
        self.base_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def growth_kb(self) -> int:
        if self.resettable and self.base_hwm is not None:
            return _status_kb("VmHWM") - max(self.base_rss, 0)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.base_max

    def check(self, what: str) -> None:
        grown = self.growth_kb()
        assert grown < RSS_BUDGET_KB, f"{what}: peak RSS grew by {grown / 1024:.0f} MB"


@pytest.fixture
def peak_rss():
    """A PeakRSS started now, checked at the end of the test."""
    p = PeakRSS()
    p.start()
    yield p
    p.check("at the end of the test")


def started_peak() -> PeakRSS:
    p = PeakRSS()
    p.start()
    return p


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-files")


# ---------------------------------------------------------------------------
# The valid starting files


def tiny_data(d=4, q=3, n=24, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, q, n)
    return X, y


@functools.cache
def base_files() -> dict[str, bytes]:
    """name -> bytes of valid files (made once)."""
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        for dtype in (np.float32, np.float64):
            m = cs.SoftmaxRegression(4, 3, dtype=dtype, seed=1)
            m.bias[:] = [0.5, -0.25, 0.125]
            if dtype == np.float64:
                m.class_names = ["cat", "dog", "ünïcödé"]
            m.save(where / "m.npz")
            files[f"model-{np.dtype(dtype).name}"] = (where / "m.npz").read_bytes()
        for momentum in (0.0, 0.9):
            X, y = tiny_data()
            t = cs.Trainer(
                cs.SoftmaxRegression(4, 3, seed=2),
                cs.SGD(lr=0.1, momentum=momentum),
                batch_size=8,
                seed=3,
                progress=False,
            )
            t.fit(X, y, epochs=1)
            t.save_checkpoint(where / "c.npz")
            files[f"ckpt-momentum-{momentum}"] = (where / "c.npz").read_bytes()
    rng = np.random.default_rng(4)
    for shape in ((3, 4, 5), (17,), (2, 1, 3, 2)):
        body = rng.integers(0, 256, math.prod(shape), dtype=np.uint8).tobytes()
        raw = bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + body
        files[f"idx-{len(shape)}d"] = raw
        files[f"idx-{len(shape)}d.gz"] = gzip.compress(raw, mtime=0)
    return files


# ---------------------------------------------------------------------------
# Byte-level damage


def zip_offsets(data: bytes) -> list[int]:
    """Offsets of the structures of a zip: local headers, the .npy header of
    each member, the central directory, its end record."""
    out = []
    with contextlib.suppress(Exception), zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            out += [info.header_offset, info.header_offset + 26, info.header_offset + 30]
            start = info.header_offset + 30 + len(info.filename) + len(info.extra)
            out += [start, start + 6, start + 8, start + 10, start + 20, start + 40]
        cd = data.rfind(b"PK\x01\x02")
        end = data.rfind(b"PK\x05\x06")
        out += [cd, end, end + 10, end + 12, end + 16, len(data) - 1]
    return [o for o in out if 0 <= o < len(data)]


def idx_offsets(data: bytes) -> list[int]:
    out = [0, 1, 2, 3, 4, 7, 8, 11, 12, len(data) - 1, len(data) - 4, len(data) - 8]
    if data[:2] == b"\x1f\x8b":
        out += [3, 4, 8, 9, 10]
    return [o for o in out if 0 <= o < len(data)]


@st.composite
def damaged(draw, data: bytes, offsets: list[int]):
    """(bytes, description): data with 1-4 random edits, at random places
    or near a structure."""
    b = bytearray(data)
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        if not b:
            b += draw(st.binary(min_size=1, max_size=8))
            edits.append("refilled")
            continue
        near = [o for o in offsets if o < len(b)]
        if near and draw(st.booleans()):
            pos = min(draw(st.sampled_from(near)) + draw(st.integers(-2, 8)), len(b) - 1)
            pos = max(pos, 0)
        else:
            pos = draw(st.integers(0, len(b) - 1))
        op = draw(
            st.sampled_from(
                [
                    "truncate",
                    "flip",
                    "flip",
                    "insert",
                    "delete",
                    "zero",
                    "overwrite",
                    "duplicate",
                    "ff",
                ]
            )
        )
        if op == "truncate":
            del b[pos:]
        elif op == "flip":
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            b[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del b[pos : pos + draw(st.integers(1, 16))]
        elif op == "zero":
            n = draw(st.integers(1, 8))
            b[pos : pos + n] = bytes(len(b[pos : pos + n]))
        elif op == "ff":
            n = draw(st.integers(1, 8))
            b[pos : pos + n] = b"\xff" * len(b[pos : pos + n])
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            b[pos : pos + len(chunk)] = chunk
        else:
            n = draw(st.integers(1, 64))
            b[pos:pos] = b[pos : pos + n]
        edits.append(f"{op}@{pos}")
    return bytes(b), " ".join(edits)


def write(scratch: Path, name: str, data: bytes) -> Path:
    path = scratch / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------
# IDX: against an obvious parser


def parse_idx(raw: bytes):
    """What read_idx must return for these bytes, or None for an error."""
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as g:
                data = g.read()
        except (OSError, EOFError, zlib.error):
            return None
    else:
        data = raw
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8 or data[3] == 0:
        return None
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != math.prod(shape):
        return None
    return np.frombuffer(body, np.uint8).reshape(shape)


@st.composite
def idx_file(draw, files):
    name = draw(st.sampled_from(sorted(k for k in files if k.startswith("idx-"))))
    data = files[name]
    how = draw(st.sampled_from(["bytes", "bytes", "header", "regzip"]))
    if how == "bytes":
        out, desc = draw(damaged(data, idx_offsets(data)))
        return out, f"{name} damaged {desc}"
    plain = gzip.decompress(data) if name.endswith(".gz") else data
    b = bytearray(plain)
    ndim = b[3]
    field = draw(st.sampled_from(["magic", "type", "ndim", "dim", "dims-huge", "body"]))
    if field == "magic":
        b[draw(st.integers(0, 1))] = draw(st.integers(1, 255))
    elif field == "type":
        b[2] = draw(st.sampled_from([0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]))
    elif field == "ndim":
        b[3] = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 255]))
    elif field == "dim":
        i = draw(st.integers(0, ndim - 1))
        b[4 + 4 * i : 8 + 4 * i] = struct.pack(">I", draw(st.integers(0, 2**32 - 1)))
    elif field == "dims-huge":
        for i in range(ndim):
            b[4 + 4 * i : 8 + 4 * i] = struct.pack(
                ">I", draw(st.sampled_from([2**32 - 1, 2**31, 65536, 0, 1]))
            )
    else:
        cut = draw(st.integers(-5, 5))
        b = b[:cut] if cut < 0 else b + bytes(cut)
    out = bytes(b)
    if how == "regzip" or (name.endswith(".gz") and draw(st.booleans())):
        out = gzip.compress(out, mtime=0)
    return out, f"{name} {how} {field}"


@fuzz("idx")
@given(data=st.data())
def test_read_idx_fuzz(data, scratch):
    raw, desc = data.draw(idx_file(base_files()))
    note(desc)
    peak_rss = started_peak()
    path = write(scratch, "damaged-idx", raw)
    want = parse_idx(raw)
    t0 = time.perf_counter()
    try:
        got = read_idx(path)
    except DatasetError as e:
        event("DatasetError")
        assert str(path) in str(e) and isinstance(e, OSError)
        assert want is None, f"raised {e} for a valid IDX file"
    else:
        event("read")
        assert want is not None, f"read {got.shape} from an invalid IDX file"
        assert got.dtype == np.uint8 and got.shape == want.shape and np.array_equal(got, want)
        assert got.flags.writeable
    assert time.perf_counter() - t0 < 5, "read_idx took too long"
    peak_rss.check(desc)


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize(
    "dims", [(2**32 - 1,), (2**32 - 1,) * 3, (65536, 65536, 65536), (2**31, 2)]
)
def test_read_idx_huge_declared_dimensions(tmp_path, peak_rss, gz, dims):
    raw = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(1000)
    path = tmp_path / "huge"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    t0 = time.perf_counter()
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(path)
    assert time.perf_counter() - t0 < 2
    peak_rss.check(f"IDX declaring {dims}")


# ---------------------------------------------------------------------------
# Models and checkpoints: damaged bytes, and valid zips of damaged content


def npz_members(data: bytes) -> dict[str, tuple[dict, bytes]]:
    """member name -> (.npy header dict, data bytes) of a valid .npz."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for name in z.namelist():
            f = io.BytesIO(z.read(name))
            version = np.lib.format.read_magic(f)
            header = (
                np.lib.format.read_array_header_1_0(f)
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0(f)
            )
            shape, fortran, dtype = header
            out[name] = (
                {
                    "descr": np.lib.format.dtype_to_descr(dtype),
                    "fortran_order": fortran,
                    "shape": shape,
                },
                f.read(),
            )
    return out


def npy(header: dict, body: bytes, version=(1, 0), raw_header: str | None = None) -> bytes:
    f = io.BytesIO()
    if raw_header is not None:
        text = raw_header.encode("latin1", "replace")
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text)
    elif version == (1, 0):
        np.lib.format.write_array_header_1_0(f, header)
    else:
        np.lib.format.write_array_header_2_0(f, header)
    f.write(body)
    return f.getvalue()


def build_npz(members: list[tuple[str, bytes, int]]) -> bytes:
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(f, "w") as z:
            for name, body, compression in members:
                z.writestr(zipfile.ZipInfo(name), body, compress_type=compression)
    return f.getvalue()


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.sampled_from([0, 1, -1, 2, 3, 4, 10**30]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=8),
        st.sampled_from(
            ["float32", "float64", "int8", "csoftmax.checkpoint", "csoftmax.SoftmaxRegression"]
        ),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths_of(obj, prefix=()):
    """Every key path of a JSON object (dicts and lists)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths_of(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths_of(v, prefix + (i,))


@st.composite
def damaged_json(draw, header: dict):
    h = copy.deepcopy(header)
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in paths_of(h) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = h
        with contextlib.suppress(KeyError, IndexError, TypeError):
            for k in path[:-1]:
                parent = parent[k]
            op = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
            if op == "set":
                parent[path[-1]] = draw(JSON_VALUES)
            elif op == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=6))] = draw(JSON_VALUES)
            edits.append(f"{op} {path}")
    if draw(st.integers(0, 9)) == 0:
        h = draw(JSON_VALUES)
        edits = ["replaced"]
    return h, edits


DESCRS = [
    "<f4",
    "<f8",
    ">f4",
    ">f8",
    "<f2",
    "|u1",
    "<i8",
    "|b1",
    "<c16",
    "|O",
    "<U3",
    "|V8",
    "<M8[s]",
    "|S4",
]


@st.composite
def damaged_npz(draw, data: bytes):
    """A valid zip of valid-looking .npy members whose content is damaged."""
    members = npz_members(data)
    names = sorted(members)
    out = {n: list(v) for n, v in members.items()}  # name -> [header, body]
    compress = {n: zipfile.ZIP_STORED for n in names}
    extra, raw_headers, versions = [], {}, {}
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        what = draw(
            st.sampled_from(
                [
                    "json",
                    "json",
                    "json",
                    "json-bytes",
                    "shape",
                    "huge",
                    "descr",
                    "fortran",
                    "body",
                    "members",
                    "compress",
                    "npy-header",
                    "version",
                ]
            )
        )
        name = draw(st.sampled_from(names))
        if name not in out:
            continue
        header, body = out[name]
        if what == "json":
            try:
                h = json.loads(body.decode()) if name == "header.npy" else None
            except (ValueError, RecursionError):
                h = None
            if h is None:
                name = "header.npy"
                header, body = out.get(name, (None, None))
                if header is None:
                    continue
                try:
                    h = json.loads(body.decode())
                except (ValueError, RecursionError):
                    continue
            h2, e = draw(damaged_json(h))
            text = json.dumps(h2).encode()
            out[name] = [dict(header, shape=(len(text),), descr="|u1"), text]
            edits.append(f"json {e}")
        elif what == "json-bytes":
            text = draw(
                st.one_of(
                    st.binary(max_size=40),
                    st.just(b"[" * 100000),
                    st.just(b'{"a": ' * 5000),
                    st.just(b"\xff\xfe{}"),
                    st.just(b""),
                )
            )
            out["header.npy"] = [
                {"descr": "|u1", "fortran_order": False, "shape": (len(text),)},
                text,
            ]
            edits.append(f"json bytes {text[:12]!r}")
        elif what == "shape":
            shape = draw(
                st.one_of(
                    st.lists(st.integers(0, 6), max_size=3).map(tuple),
                    st.sampled_from(
                        [(), (0,), (4, 3), (3, 4), (12,), (4, 3, 1), (1, 4, 3), (-1,), (3, -4)]
                    ),
                )
            )
            out[name] = [dict(header, shape=shape), body]
            edits.append(f"{name} shape {shape}")
        elif what == "huge":
            shape = draw(
                st.one_of(
                    st.sampled_from(HUGE).map(lambda n: (n,)),
                    st.sampled_from(
                        [
                            (2**32, 2**32),
                            (2**31, 2**31, 4),
                            (2**20, 2**20, 2**20),
                            (2**62, 4),
                            (4, 2**61),
                        ]
                        if not UNDER_ASAN
                        else [(2**13, 2**14)]
                    ),
                )
            )
            out[name] = [dict(header, shape=shape), body]
            edits.append(f"{name} huge shape {shape}")
        elif what == "descr":
            descr = draw(st.sampled_from(DESCRS))
            out[name] = [dict(header, descr=descr), body]
            edits.append(f"{name} descr {descr}")
        elif what == "fortran":
            out[name] = [dict(header, fortran_order=not header["fortran_order"]), body]
            edits.append(f"{name} fortran")
        elif what == "body":
            b2, e = draw(damaged(body, [0, len(body) - 1]))
            out[name] = [header, b2]
            edits.append(f"{name} body {e}")
        elif what == "members":
            op = draw(st.sampled_from(["drop", "extra", "rename", "duplicate"]))
            if op == "drop":
                del out[name]
            elif op == "extra":
                extra.append(
                    (
                        draw(
                            st.sampled_from(
                                ["extra.npy", "velocity_0.npy", "velocity_7.npy", "header"]
                            )
                        ),
                        npy({"descr": "<f8", "fortran_order": False, "shape": (2,)}, bytes(16)),
                    )
                )
            elif op == "rename":
                out[
                    draw(
                        st.sampled_from(
                            ["weight", "WEIGHT.npy", "weight.npy.npy", "bias.npy", "header.npy"]
                        )
                    )
                ] = out.pop(name)
            else:
                extra.append((name, npy(*out[name])))
            edits.append(f"{op} {name}")
        elif what == "compress":
            compress[name] = zipfile.ZIP_DEFLATED
            edits.append(f"deflate {name}")
        elif what == "npy-header":
            raw_headers[name] = draw(
                st.sampled_from(
                    [
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }"
                        + " " * 10
                        + "\n",
                        "{'descr': '<f4', 'fortran_order': False}\n",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), 'extra': 1}\n",
                        "{'descr': '<f4', 'fortran_order': 1, 'shape': [4, 3]}\n",
                        "{'descr': 42, 'fortran_order': False, 'shape': (4, 3)}\n",
                        "__import__('os').system('true')\n",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (4.5, 3)}\n",
                        "((((((((((((((((((((((((((((((((((((((((((((((((((((\n",
                        "",
                    ]
                )
            )
            edits.append(f"{name} raw npy header")
        else:
            versions[name] = (2, 0)
            edits.append(f"{name} npy 2.0")
    members_out = [
        (
            n,
            npy(h, b, versions.get(n, (1, 0)), raw_headers.get(n)),
            compress.get(n, zipfile.ZIP_STORED),
        )
        for n, (h, b) in out.items()
    ] + [(n, b, zipfile.ZIP_STORED) for n, b in extra]
    return build_npz(members_out), "; ".join(edits)


@st.composite
def damaged_model_file(draw, files, kind: str, structural: bool):
    name = draw(st.sampled_from(sorted(k for k in files if k.startswith(kind))))
    data = files[name]
    if structural:
        out, desc = draw(damaged_npz(data))
    else:
        out, desc = draw(damaged(data, zip_offsets(data)))
    return out, f"{name}: {desc}"


def check_loaded_model(m, scratch: Path) -> None:
    """A model load accepted must be whole: usable, and saved unchanged."""
    assert isinstance(m, cs.SoftmaxRegression)
    d, q = m.weight.shape
    assert m.dtype in (np.float32, np.float64) and m.weight.dtype == m.dtype == m.bias.dtype
    assert m.bias.shape == (q,) and d >= 1 and q >= 1
    assert m.weight.flags.c_contiguous and m.weight.flags.writeable and m.bias.flags.writeable
    names = m.class_names
    assert names is None or (
        isinstance(names, list) and len(names) == q and all(isinstance(s, str) for s in names)
    )
    m.predict_proba(np.ones((2, d)))
    m.save(scratch / "again.npz")
    back = cs.SoftmaxRegression.load(scratch / "again.npz")
    assert back.weight.tobytes() == m.weight.tobytes() and back.class_names == m.class_names


def load_model_checked(path: Path, scratch: Path, desc: str, peak_rss: PeakRSS) -> None:
    t0 = time.perf_counter()
    try:
        with known_errors(*KNOWN_LOAD_ERRORS):
            m = cs.SoftmaxRegression.load(path)
    except ModelFileError as e:
        event("ModelFileError")
        assert str(path) in str(e), f"the message does not name the file: {e}"
    else:
        event("loaded")
        check_loaded_model(m, scratch)
    assert time.perf_counter() - t0 < 5, "loading took too long"
    peak_rss.check(desc)


@fuzz("model_bytes")
@given(data=st.data())
def test_model_load_fuzz_bytes(data, scratch):
    raw, desc = data.draw(damaged_model_file(base_files(), "model-", structural=False))
    note(desc)
    load_model_checked(write(scratch, "damaged.npz", raw), scratch, desc, started_peak())


@fuzz("model_struct")
@given(data=st.data())
def test_model_load_fuzz_structure(data, scratch):
    raw, desc = data.draw(damaged_model_file(base_files(), "model-", structural=True))
    note(desc)
    load_model_checked(write(scratch, "damaged.npz", raw), scratch, desc, started_peak())


def fresh_trainer(momentum: float) -> cs.Trainer:
    return cs.Trainer(
        cs.SoftmaxRegression(4, 3, seed=5),
        cs.SGD(lr=0.05, momentum=momentum),
        batch_size=5,
        seed=6,
        progress=False,
    )


def trainer_state(t: cs.Trainer) -> tuple:
    opt = t.optimizer
    return (
        t.model.weight.tobytes(),
        t.model.bias.tobytes(),
        t.model.class_names,
        t.epoch,
        t.seed,
        t.batch_size,
        t.shuffle,
        len(t.history),
        opt.lr,
        opt.base_lr,
        opt.momentum,
        opt.weight_decay,
        opt.nesterov,
        [None if v is None else v.tobytes() for v in opt.state_dict()["velocity"]],
    )


#: Trainer.load_checkpoint checks part of the header only: KeyError,
#: TypeError, ValueError (not ModelFileError) or OverflowError escape for
#: missing or mistyped fields (test_checkpoint_header_fields_...).
def known(condition: bool) -> None:
    if SKIP_KNOWN and condition:
        reject()


def checkpoint_problems(path: Path) -> list[str]:
    """What is wrong with a checkpoint that a trainer of a 4x3 float32 model
    could load (when its header parses at all): fields a resumed fit cannot
    use (test_checkpoint_with_invalid_fields_is_refused pins these)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        h = json.loads(arrays["header"].astype(np.uint8).tobytes().decode())
    except Exception:
        return []
    if not isinstance(h, dict):
        return []
    problems = []
    for key, low in (("epoch", 0), ("seed", 0), ("batch_size", 1)):
        try:
            if int(h[key]) < low:
                problems.append(f"{key} {h[key]!r}")
        except Exception:
            pass
    names = h.get("class_names")
    if names is not None and not (
        isinstance(names, list) and len(names) == 3 and all(isinstance(n, str) for n in names)
    ):
        problems.append(f"class_names {names!r}")
    for i, like in enumerate(((4, 3), (3,))):
        v = arrays.get(f"velocity_{i}")
        if v is not None and (v.shape != like or v.dtype != np.float32):
            problems.append(f"velocity_{i} of shape {v.shape} and dtype {v.dtype}")
    return problems


KNOWN_CHECKPOINT_ERRORS = (
    lambda e: (
        isinstance(e, (KeyError, TypeError, OverflowError))
        or (isinstance(e, ValueError) and not isinstance(e, ModelFileError))
    ),
)


@fuzz("ckpt")
@given(data=st.data())
def test_checkpoint_load_fuzz(data, scratch):
    structural = data.draw(st.booleans())
    raw, desc = data.draw(damaged_model_file(base_files(), "ckpt-", structural=structural))
    note(desc)
    path = write(scratch, "damaged-ckpt.npz", raw)
    peak_rss = started_peak()
    momentum = 0.9 if "0.9" in desc.split(":")[0] else 0.0
    t = fresh_trainer(momentum)
    before = trainer_state(t)
    t0 = time.perf_counter()
    try:
        with known_errors(*KNOWN_LOAD_ERRORS, *KNOWN_CHECKPOINT_ERRORS):
            t.load_checkpoint(path)
    except ModelFileError as e:
        event("ModelFileError")
        assert str(path) in str(e), f"the message does not name the file: {e}"
        # Not in API.md, but expected of a loader: a refused file changes nothing.
        assert trainer_state(t) == before, "a refused checkpoint changed the trainer"
    else:
        event("loaded")
        # An accepted checkpoint must be whole: its fields valid, and a
        # trainer that trains, evaluates, and saves a model and a checkpoint
        # that load again.
        problems = checkpoint_problems(path)
        known(bool(problems))
        assert not problems, f"load_checkpoint accepted a checkpoint with {problems}"
        assert isinstance(t.epoch, int) and t.epoch >= 0, t.epoch
        assert isinstance(t.batch_size, int) and t.batch_size >= 1, t.batch_size
        assert t.model.weight.shape == (4, 3) and t.model.weight.dtype == np.float32
        X, y = tiny_data()
        h = t.fit(X, y, epochs=1)
        assert len(h) >= 1
        t.evaluate(X, y)
        check_loaded_model(t.model, scratch)
        t.save_checkpoint(scratch / "again-ckpt.npz")
        fresh_trainer(momentum).load_checkpoint(scratch / "again-ckpt.npz")
    assert time.perf_counter() - t0 < 10, "too slow"
    peak_rss.check(desc)


# ---------------------------------------------------------------------------
# Huge declared sizes, zip bombs


def model_npz_with_weight(weight_npy: bytes, d=4, q=3, compress=zipfile.ZIP_STORED) -> bytes:
    header = json.dumps(
        {
            "format": "csoftmax.SoftmaxRegression",
            "version": 1,
            "dtype": "float32",
            "n_features": d,
            "n_classes": q,
            "class_names": None,
        }
    ).encode()
    return build_npz(
        [
            (
                "header.npy",
                npy({"descr": "|u1", "fortran_order": False, "shape": (len(header),)}, header),
                0,
            ),
            ("weight.npy", weight_npy, compress),
            (
                "bias.npy",
                npy({"descr": "<f4", "fortran_order": False, "shape": (q,)}, bytes(4 * q)),
                0,
            ),
        ]
    )


@pytest.mark.parametrize(
    "shape, descr",
    [
        ((2**40,), "<f4"),
        ((2**31,), "<f8"),
        ((2**62,), "|u1"),
        ((2**32, 2**32), "<f4"),
        ((2**40, 4), "<f8"),
        ((2**63 - 1,), "<f4"),
    ],
    ids=str,
)
def test_npz_member_declaring_a_huge_shape_fails_fast(tmp_path, peak_rss, shape, descr):
    """An .npz whose .npy member declares terabytes (holding 48 bytes) fails
    at once with ModelFileError, for the model and the checkpoint loaders,
    and the peak RSS stays put."""
    if UNDER_ASAN and math.prod(shape) * np.dtype(descr).itemsize > 2**30:
        pytest.skip("ASan aborts on a huge malloc instead of failing it")
    path = tmp_path / "huge.npz"
    path.write_bytes(
        model_npz_with_weight(
            npy({"descr": descr, "fortran_order": False, "shape": shape}, bytes(48))
        )
    )
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="huge.npz"):
        cs.SoftmaxRegression.load(path)
    with pytest.raises(ModelFileError, match="huge.npz"):
        fresh_trainer(0.0).load_checkpoint(path)
    assert time.perf_counter() - t0 < 2, "took too long"
    peak_rss.check(f"declared {shape} {descr}")


def test_model_file_that_is_a_zip_bomb(tmp_path):
    """A 0.3 MB model file whose weight member inflates to 256 MiB of zeros,
    declared as a (2**25,) float64 array, where the JSON header says (4, 3)
    float32.  The loader can refuse it from the .npy header alone (its shape
    and dtype disagree with the JSON header) without inflating anything;
    the peak RSS must not grow by the inflated size."""
    if UNDER_ASAN:
        pytest.skip("slow under ASan")
    nbytes = 2**28
    header = json.dumps(
        {
            "format": "csoftmax.SoftmaxRegression",
            "version": 1,
            "dtype": "float32",
            "n_features": 4,
            "n_classes": 3,
            "class_names": None,
        }
    ).encode()
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr(
            "header.npy",
            npy({"descr": "|u1", "fortran_order": False, "shape": (len(header),)}, header),
        )
        with z.open("weight.npy", "w") as member:  # streamed: never 256 MiB in memory
            member.write(
                npy({"descr": "<f8", "fortran_order": False, "shape": (nbytes // 8,)}, b"")
            )
            zeros = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                member.write(zeros)
        z.writestr(
            "bias.npy", npy({"descr": "<f4", "fortran_order": False, "shape": (3,)}, bytes(12))
        )
    size = path.stat().st_size
    assert size < 2**20
    peak_rss = PeakRSS()
    peak_rss.start()
    t0 = time.perf_counter()
    with pytest.raises(ModelFileError, match="bomb.npz"):
        cs.SoftmaxRegression.load(path)
    seconds = time.perf_counter() - t0
    grown = peak_rss.growth_kb()
    assert grown < RSS_BUDGET_KB, (
        f"a {size // 1024} KB model file made the peak RSS grow by {grown // 1024} MB "
        f"(in {seconds:.1f} s): the loader inflates every member before comparing its "
        "declared shape and dtype with the header"
    )


# ---------------------------------------------------------------------------
# Fashion-MNIST's loader with one damaged file

FASHION = Path(os.environ.get("CSOFTMAX_DATA", "") or "/usr/share/datasets/fashion-mnist")
FASHION_FILES = [
    "t10k-labels-idx1-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "train-images-idx3-ubyte",
]


def fashion_file(name: str) -> Path | None:
    for cand in (FASHION / name, FASHION / f"{name}.gz"):
        if cand.is_file():
            return cand
    return None


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    found = {n: fashion_file(n) for n in FASHION_FILES}
    if not all(found.values()):
        pytest.skip(f"Fashion-MNIST not found in {FASHION}")
    folder = tmp_path_factory.mktemp("fashion")
    for name, src in found.items():
        if name != "t10k-labels-idx1-ubyte":
            (folder / src.name).symlink_to(src)
    return folder, found["t10k-labels-idx1-ubyte"]


@fuzz("fashion")
@given(data=st.data())
def test_load_fashion_mnist_with_a_damaged_label_file(data, fashion_dir):
    """The first file the loader reads, damaged: DatasetError naming it (the
    content no longer matches its checksum), never another exception."""
    folder, src = fashion_dir
    raw = src.read_bytes()
    bad, desc = data.draw(damaged(raw, idx_offsets(raw)))
    same = bad == raw
    if src.suffix == ".gz" and not same:
        try:
            same = gzip.decompress(bad) == gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            same = False
    if same:
        reject()  # the same content (a gzip header field changed): a valid file
    note(desc)
    peak_rss = started_peak()
    path = folder / src.name
    path.write_bytes(bad)
    with pytest.raises(DatasetError) as info:
        cs.datasets.load_fashion_mnist(folder)
    assert str(path) in str(info.value)
    peak_rss.check(desc)


# ---------------------------------------------------------------------------
# Defects found by the fuzz tests above, each pinned by a small test that
# fails while the defect is there (all fixed since, in 5869836).


def rebuilt(base: str, change=None, member_edit=None) -> bytes:
    """A base file rebuilt as a valid zip, its JSON header changed by change(h)."""
    members = npz_members(base_files()[base])
    out = []
    for name, (header, body) in members.items():
        if name == "header.npy" and change is not None:
            h = json.loads(body.decode())
            h = change(h) or h
            body = h if isinstance(h, bytes) else json.dumps(h).encode()
            header = {"descr": "|u1", "fortran_order": False, "shape": (len(body),)}
        if member_edit is not None:
            header, body = member_edit(name, header, body)
        out.append((name, npy(header, body), zipfile.ZIP_STORED))
    return build_npz(out)


def central_entry(data: bytes, member: str) -> int:
    """Offset of member's entry in the zip's central directory."""
    at = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02"))
    while at >= 0:
        name_len = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_len].decode() == member:
            return at
        at = data.find(b"PK\x01\x02", at + 4)
    raise KeyError(member)


def zip_field(data: bytes, member: str, offset: int, value: int) -> bytes:
    b = bytearray(data)
    struct.pack_into("<H", b, central_entry(data, member) + offset, value)
    return bytes(b)


@pytest.mark.parametrize(
    "what, make",
    [
        # The model header without "class_names": KeyError('class_names').
        (
            "no class_names",
            lambda: rebuilt("model-float32", lambda h: h.pop("class_names") and None),
        ),
        # A JSON header nested 100,000 deep: RecursionError from json.loads.
        ("deep JSON", lambda: rebuilt("model-float32", lambda h: b"[" * 100_000)),
        # An .npy header numpy cannot tokenize: tokenize.TokenError.
        (
            "garbled .npy header",
            lambda: build_npz(
                [
                    (n, npy(h, b, raw_header="(((((((\n" if n == "bias.npy" else None), 0)
                    for n, (h, b) in npz_members(base_files()["model-float32"]).items()
                ]
            ),
        ),
        # zipfile's NotImplementedError: "version needed to extract" 9.9 ...
        ("zip version 9.9", lambda: zip_field(base_files()["model-float32"], "weight.npy", 6, 99)),
        # ... and an unknown compression method.
        ("compression 99", lambda: zip_field(base_files()["model-float32"], "weight.npy", 10, 99)),
        # zipfile's RuntimeError: a member flagged as encrypted.
        ("encrypted flag", lambda: zip_field(base_files()["model-float32"], "weight.npy", 8, 1)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_model_loaders_raise_model_file_error_only(tmp_path, what, make):
    """SoftmaxRegression.load promises ModelFileError for a file that is
    "missing, truncated, or not a valid model file"; these escaped as other
    exceptions (and the same files break Trainer.load_checkpoint alike)."""
    path = tmp_path / "bad.npz"
    path.write_bytes(make())
    with pytest.raises(ModelFileError, match="bad.npz"):
        cs.SoftmaxRegression.load(path)
    if what != "no class_names":
        with pytest.raises(ModelFileError, match="bad.npz"):
            fresh_trainer(0.9).load_checkpoint(path)


def _set(key, value, sub=None):
    def change(h):
        target = h[sub] if sub else h
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value

    return change


_DELETE = object()


@pytest.mark.parametrize(
    "what, change",
    [
        ("optimizer.lr missing", _set("lr", _DELETE, "optimizer")),  # KeyError
        (
            "optimizer.base_lr missing",
            _set("base_lr", _DELETE, "optimizer"),
        ),  # KeyError, lr already changed
        ("optimizer.lr null", _set("lr", None, "optimizer")),  # TypeError
        (
            "optimizer.lr -1",
            _set("lr", -1, "optimizer"),
        ),  # ValueError('lr: ...'), not ModelFileError
        (
            "batch_size missing",
            _set("batch_size", _DELETE),
        ),  # KeyError, after the weights were replaced
        ("batch_size null", _set("batch_size", None)),  # TypeError
        ("shuffle missing", _set("shuffle", _DELETE)),  # KeyError
        ("class_names missing", _set("class_names", _DELETE)),  # KeyError
        ("epoch Infinity", _set("epoch", math.inf)),  # OverflowError
        ("seed Infinity", _set("seed", math.inf)),  # OverflowError
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_checkpoint_with_missing_or_mistyped_fields_is_refused(tmp_path, what, change):
    """Trainer.load_checkpoint checked part of the header inside its
    try/except and read the rest (optimizer state, batch_size, shuffle,
    class_names) after it: KeyError, TypeError, ValueError or OverflowError
    escaped instead of ModelFileError, some after the trainer was partly
    overwritten (its weights, its optimizer's lr)."""
    path = tmp_path / "bad.npz"
    path.write_bytes(rebuilt("ckpt-momentum-0.9", change))
    t = fresh_trainer(0.9)
    before = trainer_state(t)
    with pytest.raises(ModelFileError, match="bad.npz"):
        t.load_checkpoint(path)
    assert trainer_state(t) == before, "a refused checkpoint changed the trainer"


def _velocity(shape, descr="<f4"):
    def edit(name, header, body):
        if name == "velocity_0.npy":
            n = math.prod(shape) * np.dtype(descr).itemsize
            return {"descr": descr, "fortran_order": False, "shape": shape}, bytes(n)
        return header, body

    return edit


@pytest.mark.parametrize(
    "what, change, edit",
    [
        ("epoch -3", _set("epoch", -3), None),  # the next fit: ValueError from NumPy
        ("seed -1", _set("seed", -1), None),  # the next fit: ValueError from NumPy
        ("batch_size 0", _set("batch_size", 0), None),  # the next fit: ZeroDivisionError
        ("class_names 7", _set("class_names", 7), None),  # model.save then load: ModelFileError
        ("velocity_0 of shape ()", None, _velocity(())),  # the next fit: broadcast ValueError
        ("velocity_0 of shape (3, 4)", None, _velocity((3, 4))),
        ("velocity_0 int64", None, _velocity((4, 3), "<i8")),  # the next fit: casting TypeError
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_checkpoint_with_invalid_fields_is_refused(tmp_path, what, change, edit):
    """Fields that load_checkpoint accepted without checking them, and that
    broke the resumed fit (or the model's save/load) afterwards, far from
    the file that caused it: the checkpoint should be refused at load."""
    path = tmp_path / "bad.npz"
    path.write_bytes(rebuilt("ckpt-momentum-0.9", change, edit))
    t = fresh_trainer(0.9)
    try:
        t.load_checkpoint(path)
    except ModelFileError:
        return  # refused: what we want
    X, y = tiny_data()
    try:
        t.fit(X, y, epochs=1)
        t.model.save(tmp_path / "model.npz")
        cs.SoftmaxRegression.load(tmp_path / "model.npz")
    except Exception as e:
        pytest.fail(
            f"load_checkpoint accepted a checkpoint with {what}; then {type(e).__name__}: {e}"
        )
    pytest.fail(f"load_checkpoint accepted a checkpoint with {what}")
