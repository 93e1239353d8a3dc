"""Loads the C core with GNU OpenMP told not to spin-wait.

libgomp's threads spin for up to ~10 ms at each barrier by default; when
another process holds a core, a spinning thread starves the one it waits for,
and a 2-thread training step of 0.1 ms took 20 ms (measured on 2 cores with a
busy process beside).  Sleeping at once costs a few microseconds a call
instead.  libgomp reads GOMP_SPINCOUNT when it is loaded, so it is set only
while the core is imported (libraries loaded later keep their defaults), and
never over a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT.  Imported first by
the package's __init__.
"""

import os

#: How the kernels' OpenMP threads wait, as decided at import (show_config).
WAIT_POLICY = "passive (csoftmax set GOMP_SPINCOUNT=0 while loading its core)"


def _load_core() -> None:
    global WAIT_POLICY
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        WAIT_POLICY = "the user's: " + ", ".join(
            f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ
        )
        from . import _core  # noqa: F401

        return
    os.environ["GOMP_SPINCOUNT"] = "0"
    try:
        from . import _core  # noqa: F401
    finally:
        del os.environ["GOMP_SPINCOUNT"]


_load_core()
