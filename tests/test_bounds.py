"""The kernels touch nothing outside the arrays they are given.

Rows are placed flush against inaccessible guard pages (PROT_NONE), at the
end of a page and at its start, for every row length up to 70 and under
every SIMD path: a vector load or store that strays past the row's last
element (or before its first) faults.  The checks run in a child process so
that a fault fails this test instead of ending the test session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="uses mmap/mprotect guard pages"
)

CHILD = textwrap.dedent(
    r"""
    import ctypes, mmap, sys
    import numpy as np
    import csoftmax as cs
    from csoftmax import _core

    PAGE = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    def guarded():
        # [guard][usable page][guard]
        m = mmap.mmap(-1, 3 * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        for p in (0, 2):
            if libc.mprotect(base + p * PAGE, PAGE, 0) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")
        return m

    MEM = guarded()

    def flush(n_items, dtype, at_end):
        itemsize = np.dtype(dtype).itemsize
        offset = PAGE + (PAGE - n_items * itemsize if at_end else 0)
        return np.frombuffer(MEM, dtype=dtype, count=n_items, offset=offset)

    rng = np.random.default_rng(0)
    checked = 0
    for path in _core.simd_available():
        _core.set_simd(path)
        for dtype in (np.float32, np.float64):
            for q in range(1, 71):
                values = (rng.standard_normal(q) * 3).astype(dtype)
                for at_end in (True, False):
                    x = flush(q, dtype, at_end)
                    x[:] = values
                    lab = np.array([q - 1])
                    expected = {
                        "softmax": cs.softmax(values.copy()),
                        "log_softmax": cs.log_softmax(values.copy()),
                        "logsumexp": cs.logsumexp(values.copy()),
                        "exp": _core.exp(values.copy()),
                        "ce": cs.cross_entropy_with_grad(values.copy()[None], lab,
                                                         label_smoothing=0.1)[1][0],
                    }
                    got = {
                        "softmax": cs.softmax(x),
                        "log_softmax": cs.log_softmax(x),
                        "logsumexp": cs.logsumexp(x),
                        "exp": _core.exp(x),
                        "ce": cs.cross_entropy_with_grad(x.reshape(1, q), lab,
                                                         label_smoothing=0.1)[1][0],
                    }
                    # Probability targets flush against the guard as well.
                    probs = flush(q, dtype, at_end)
                    probs[:] = np.full(q, 1.0 / q, dtype)
                    cs.cross_entropy_with_grad(values[None].copy(), probs.reshape(1, q))
                    # Outputs flush against the guard: out=, in place, grad_out=.
                    out = flush(q, dtype, at_end)
                    cs.softmax(values, out=out)
                    assert np.array_equal(out, expected["softmax"]), (path, q, "out=")
                    out[:] = values
                    cs.log_softmax(out, out=out)
                    assert np.array_equal(out, expected["log_softmax"]), (path, q, "in place")
                    g = out.reshape(1, q)
                    g[:] = values
                    cs.cross_entropy_with_grad(g, lab, label_smoothing=0.1, grad_out=g)
                    assert np.array_equal(g[0], expected["ce"]), (path, q, "grad_out")
                    for k in expected:
                        assert np.array_equal(got[k], expected[k]), (path, dtype, q, at_end, k)
                    checked += 1
    print("checked", checked)
    """
)


def test_no_access_outside_the_arrays(tmp_path):
    # In a folder of its own, so the child imports the installed csoftmax,
    # not the source folder of a checkout.
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} (a negative code is the signal that "
        f"killed it, e.g. -11 for SIGSEGV)\nstdout: {proc.stdout[-2000:]}\n"
        f"stderr: {proc.stderr[-4000:]}"
    )
    assert "checked" in proc.stdout


# Short rows are worked on in tiles of several rows, loaded in whole vectors
# that read past each row's end while that stays inside the given rows; the
# last rows of a call must not.  Batches of rows, flush against the guards,
# as C-ordered matrices, as row-reversed views and as every other row of a
# wider matrix (whose gap the loads may read, but not past the last row).
CHILD_TILES = textwrap.dedent(
    r"""
    import ctypes, mmap
    import numpy as np
    import csoftmax as cs
    from csoftmax import _core

    PAGE = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    m = mmap.mmap(-1, 3 * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(m))
    for p in (0, 2):
        if libc.mprotect(base + p * PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")

    def flush(shape, dtype, at_end):
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        offset = PAGE + (PAGE - size if at_end else 0)
        count = int(np.prod(shape))
        return np.frombuffer(m, dtype=dtype, count=count, offset=offset).reshape(shape)

    rng = np.random.default_rng(1)
    checked = 0
    for path in _core.simd_available():
        _core.set_simd(path)
        for dtype in (np.float32, np.float64):
            for q in (1, 2, 3, 5, 7, 8, 9, 10, 15, 16, 17, 31, 33):
                for n in (1, 2, 7, 16, 17, 33):
                    if n * q * np.dtype(dtype).itemsize > PAGE:
                        continue
                    values = (rng.standard_normal((n, q)) * 3).astype(dtype)
                    lab = rng.integers(0, q, n)
                    expected = [cs.softmax(values), cs.log_softmax(values), cs.logsumexp(values),
                                *cs.cross_entropy_with_grad(values, lab)]
                    for at_end in (True, False):
                        layouts = {"C": flush((n, q), dtype, at_end)}
                        if 2 * n * q * np.dtype(dtype).itemsize <= PAGE:
                            wide = flush((n, 2 * q), dtype, at_end)
                            layouts["gapped"] = wide[:, q:] if at_end else wide[:, :q]
                        for name, x in layouts.items():
                            # x[::-1]: the same logical rows, laid out backwards.
                            for view in (x, x[::-1]):
                                view[:] = values
                                got = [cs.softmax(view), cs.log_softmax(view), cs.logsumexp(view),
                                       *cs.cross_entropy_with_grad(view, lab)]
                                for g, e in zip(got, expected):
                                    assert np.array_equal(g, e), (path, dtype, q, n, name, at_end)
                                # In place, over the guarded rows themselves.
                                cs.softmax(view, out=view)
                                assert np.array_equal(view, expected[0]), (path, q, n, name)
                                view[:] = values
                                g = cs.cross_entropy_with_grad(view, lab, grad_out=view)[1]
                                assert np.array_equal(g, expected[4]), (path, q, n, name)
                                checked += 1
    print("checked", checked)
    """
)


def test_tiles_stay_inside_the_rows(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_TILES],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, (
        f"child exited with {proc.returncode} (a negative code is the signal that "
        f"killed it, e.g. -11 for SIGSEGV)\nstdout: {proc.stdout[-2000:]}\n"
        f"stderr: {proc.stderr[-4000:]}"
    )
    assert "checked" in proc.stdout
