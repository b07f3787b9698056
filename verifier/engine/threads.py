"""How many threads the engine's kernels use (BLAS, and OpenMP where a library has it).

numpy's BLAS otherwise starts one thread per core, and on a shared machine (the daemons beside
a node, the benchmarks beside onnxruntime) those threads fight for cores: small products run
several times slower than on one thread. The count comes from `--threads`, else
BISECTML_THREADS, else 1; `set_threads` applies it to the whole process. Threads never change a
result: the committed path is integer-exact whatever the summation order (docs/SPEC.md 4.6)."""

from __future__ import annotations

import os
import sys

from verifier.core.errors import BisectmlError

THREADS_ENV = "BISECTML_THREADS"
DEFAULT_THREADS = 1

_limits = None  # the live threadpool limit (kept so that it is not undone)


def thread_count(value: int | str | None = None) -> int:
    """The thread count to use: `value`, else $BISECTML_THREADS, else 1."""
    raw = value if value is not None else os.environ.get(THREADS_ENV)
    if raw is None or raw == "":
        return DEFAULT_THREADS
    try:
        n = int(raw)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise BisectmlError(f"thread count '{raw}' is not a positive integer; set --threads or {THREADS_ENV} to 1 or more.")
    return n


# read by BLAS and OpenMP libraries when they load (threadpoolctl reaches only loaded ones)
_POOL_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def set_threads(n: int) -> int:
    """Limit every BLAS and OpenMP pool of this process to `n` threads: those loaded already,
    and (through their environment variables) those loaded later."""
    global _limits
    for var in _POOL_ENV:
        os.environ[var] = str(n)
    if "numpy" in sys.modules:  # a pool may be loaded already; otherwise the variables do it (and start-up skips the scan)
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(limits=n)
    return n


def blas_threads() -> list[int]:
    """The thread counts of the BLAS pools loaded now (for reports and tests)."""
    from threadpoolctl import threadpool_info

    return [int(p["num_threads"]) for p in threadpool_info() if p.get("user_api") == "blas"]
