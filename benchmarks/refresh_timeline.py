"""Where a command-line refresh's time goes: run ``valuetrack ARGS`` in this process, as the console
script does, and print to stderr when each phase started and ended (seconds from the start), when
the valuation workers finished every tenth model, and the CPU of this process and of its children
(the refresh's warehouse process, D69, writes its own phases as they end, marked as its own).
Each worker also appends ``model cpu_ms pickle_ms wall_ms`` per model to ``worker-PID.txt`` in the
folder given by ``VALUETRACK_TIMELINE_DIR`` (default: the current folder) — the pickling is timed
on a second, extra pickle, so it adds its own cost to the run.

Run it in a folder holding a ``valuetrack.toml``, on a copy of the app database (a refresh writes):

    python benchmarks/refresh_timeline.py refresh --as-of 2026-06-01 --json > /dev/null

It measures one run, on whatever else the machine is doing: compare runs alternated on an idle
machine, and prefer CPU times when it is not idle. ``python -m benchmarks value`` is the benchmark.
"""

from __future__ import annotations

import gc
import os
import pickle
import resource
import sys
import time
from pathlib import Path

T0 = time.perf_counter()
_STAMPS: list[tuple[float, str]] = []
_DONE: list[tuple[float, str]] = []


_MAIN = os.getpid()


def _stamp(what: str) -> None:
    if os.getpid() != _MAIN:  # the refresh's warehouse process (D69): said at once, it never returns
        sys.stderr.write(f"{time.perf_counter() - T0:7.3f} {what} (warehouse process)\n")
        return
    _STAMPS.append((time.perf_counter() - T0, what))


def _wrap(owner: object, name: str, label: str) -> None:
    inner = getattr(owner, name)

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        _stamp(f"{label} start")
        try:
            return inner(*args, **kwargs)
        finally:
            _stamp(f"{label} end")

    setattr(owner, name, timed)


def _instrument() -> None:
    import valuetrack.refresh as refresh
    import valuetrack.refresh_pull as pull
    import valuetrack.valuation as valuation
    import valuetrack.value.parallel as parallel
    from valuetrack.store.ledger import LedgerStore

    _wrap(parallel, "stream_from_child", "the warehouse process forked and its models received")
    _wrap(parallel.EarlyValuation, "begin", "imports and fork of the workers (begin)")
    _wrap(refresh, "_count_overlaps", "overlap count")
    _wrap(pull, "pull_models", "pull")
    _wrap(parallel.EarlyValuation, "collect", "waiting for the workers (collect)")
    _wrap(valuation, "_record", "record")
    _wrap(LedgerStore, "write", "ledger write")

    submit = parallel.EarlyValuation.ready

    def ready(self, names):  # noqa: ANN001, ANN202
        before = set(self._futures)
        submit(self, names)
        for name in set(self._futures) - before:
            self._futures[name].add_done_callback(
                lambda _f, n=name: _DONE.append((time.perf_counter() - T0, n)))

    parallel.EarlyValuation.ready = ready
    _VALUE.append(parallel._value)
    parallel._value = timed_value  # a module-level function: the pool sends it by name


_VALUE: list = []


def timed_value(i: int):  # noqa: ANN201
    """The worker's valuation of model ``i``, its CPU and its pickling written down."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = _VALUE[0](i)
    cpu1 = time.process_time()
    pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)
    cpu2 = time.process_time()
    folder = Path(os.environ.get("VALUETRACK_TIMELINE_DIR", "."))
    with open(folder / f"worker-{os.getpid()}.txt", "a") as f:
        f.write(f"{out[0]} {(cpu1 - cpu) * 1000:.1f} {(cpu2 - cpu1) * 1000:.1f} "
                f"{(time.perf_counter() - wall) * 1000:.1f}\n")
    return out


def main() -> None:
    gc.set_threshold(50_000, 10, 10)  # as valuetrack.cli.run does
    from valuetrack import cli

    _stamp("cli imported")
    _instrument()
    code = cli.main(sys.argv[1:])
    _stamp("main returned")
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    for t, what in _STAMPS:
        sys.stderr.write(f"{t:7.3f} {what}\n")
    if _DONE:
        _DONE.sort()
        sys.stderr.write("workers done (every 10th): " + " ".join(f"{t:.2f}" for t, _ in _DONE[::10])
                         + f"; last {_DONE[-1][0]:.3f} ({_DONE[-1][1]})\n")
    sys.stderr.write(f"cpu: this process {me.ru_utime + me.ru_stime:.2f} s, children "
                     f"{children.ru_utime + children.ru_stime:.2f} s\n")
    from valuetrack.store.db import dispose_all

    dispose_all()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
