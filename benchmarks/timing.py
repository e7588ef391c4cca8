"""Shared measuring helpers for the benchmarks: repeated wall time and peak memory."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
import tracemalloc
from typing import Any, Callable, Iterator


def timed(fn: Callable[[], Any], repeat: int = 3, warmup: int = 0,
          clock: Callable[[], float] = time.perf_counter) -> dict:
    """Run ``fn`` ``warmup`` + ``repeat`` times; return min/median/max seconds of the timed runs.

    ``clock=time.process_time`` measures CPU seconds of this process (all its threads) instead of
    wall time: fairer on a shared machine and for libraries that run several threads.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return {"min_s": min(times), "median_s": statistics.median(times), "max_s": max(times), "runs": repeat}


def peak_python_memory(fn: Callable[[], Any]) -> float:
    """Peak Python-heap allocation (MiB) while ``fn`` runs (tracemalloc; excludes native buffers)."""
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20


@contextlib.contextmanager
def valuetrack_env(as_of: str) -> Iterator[None]:
    """A benchmark valuing inside this process: no settings file from the caller's environment, a
    fixed as-of date and user; the environment, the working directory and the app database
    engines are restored or closed afterwards."""
    old_cwd = os.getcwd()
    saved = {k: os.environ.get(k) for k in ("VALUETRACK_CONFIG", "VALUETRACK_AS_OF", "VALUETRACK_USER")}
    os.environ.pop("VALUETRACK_CONFIG", None)
    os.environ["VALUETRACK_AS_OF"] = as_of
    os.environ["VALUETRACK_USER"] = "bench@example.com"
    try:
        yield
    finally:
        os.chdir(old_cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        from valuetrack.store.db import dispose_all

        dispose_all()
