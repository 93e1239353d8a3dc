"""Other Cython code can cimport the nogil kernels from csoftmax/_core.pxd."""

import os
import subprocess
import sys
import textwrap

import pytest

import csoftmax as cs

pytest.importorskip("Cython")
pytest.importorskip("setuptools")

CONSUMER = textwrap.dedent(
    """
    # cython: language_level=3
    import numpy as np
    from csoftmax._core cimport csm_rows, CSM_FLOAT64, CSM_OK
    cimport csoftmax._core as csm

    def softmax_rows(double[:, ::1] x):
        y = np.empty_like(np.asarray(x))
        cdef double[:, ::1] yv = y
        cdef csm_rows xr, yr
        xr.data = &x[0, 0]
        xr.n0, xr.n1, xr.q = 1, x.shape[0], x.shape[1]
        xr.s0, xr.s1, xr.sq = 0, x.shape[1], 1
        yr = xr
        yr.data = &yv[0, 0]
        cdef int status
        with nogil:
            status = csm.softmax(CSM_FLOAT64, &xr, &yr)
        assert status == CSM_OK
        return y
    """
)

BUILD = textwrap.dedent(
    """
    import os, sys
    from setuptools import Extension, setup
    from Cython.Build import cythonize
    import csoftmax
    package_parent = os.path.dirname(os.path.dirname(csoftmax.__file__))
    setup(
        ext_modules=cythonize(
            [Extension("consumer", ["consumer.pyx"], include_dirs=[csoftmax.get_include()])],
            include_path=[package_parent],
            quiet=True,
        ),
        script_args=["build_ext", "--inplace", "-q"],
    )
    """
)


def test_header_is_installed():
    assert os.path.isfile(os.path.join(cs.get_include(), "csoftmax.h"))


def test_another_extension_cimports_and_calls_a_kernel(tmp_path):
    (tmp_path / "consumer.pyx").write_text(CONSUMER)
    (tmp_path / "build.py").write_text(BUILD)
    env = dict(os.environ)
    built = subprocess.run(
        [sys.executable, "build.py"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert built.returncode == 0, built.stdout + built.stderr
    check = (
        "import numpy as np, consumer, csoftmax as cs\n"
        "x = np.random.default_rng(0).normal(size=(5, 7))\n"
        "assert np.array_equal(consumer.softmax_rows(x), cs.softmax(x))\n"
        "print('ok')\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert ran.returncode == 0 and "ok" in ran.stdout, ran.stdout + ran.stderr
