"""One BLAS thread while a sampler proposes (threadpoolctl, when installed): the GP works
on many small matrices, where BLAS threads only contend."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

_blas_controller: Any = None  # threadpoolctl's ThreadpoolController; False without threadpoolctl
_blas_modules = 0  # len(sys.modules) when _blas_controller was built
_blas_lock = threading.Lock()
_blas_users = 0  # proposals under way, in any thread
_blas_limiter: Any = None  # the limit they share; it restores the libraries' own when lifted


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Limit every loaded BLAS library to one thread while proposing, if threadpoolctl is
    installed.

    The GP works on many small matrices, where BLAS threads only contend: on a busy
    machine, OpenBLAS's threads made proposals an order of magnitude slower. numpy and
    scipy may each bring their own OpenBLAS, and scipy's does the GP's linear algebra.
    The limit is process-wide, so proposals in several threads share one: the first sets
    it and the last lifts it (two limits in turn would restore each other's one thread).
    """
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            controller = _blas_controller_now()
            _blas_limiter = (
                None if controller is None else controller.limit(limits=1, user_api="blas")
            )
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _blas_controller_now() -> Any:
    """threadpoolctl's controller of the BLAS libraries loaded now (None without threadpoolctl).

    A controller sees only the libraries loaded when it is built, and scipy is imported
    lazily, so scipy.linalg (scipy's own BLAS and LAPACK) is imported first, and the
    controller is rebuilt whenever the count of imported modules has changed (a library is
    loaded by an extension module's import). A build costs about 0.5 ms; the check, far less.
    """
    global _blas_controller, _blas_modules
    if _blas_controller is False:
        return None
    if _blas_controller is None or len(sys.modules) != _blas_modules:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _blas_controller = False
            return None
        import scipy.linalg  # noqa: F401  loads scipy's BLAS, which the GP uses

        _blas_controller = ThreadpoolController()
        _blas_modules = len(sys.modules)
    return _blas_controller
