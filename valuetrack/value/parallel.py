"""Value the models of a portfolio in forked worker processes (D49).

Each model's valuation (load its aggregates, fit its effect, its figures to date and what the
caller's ``prepare`` adds) depends on that model alone, so the models are shared out between
``workers`` processes forked from this one: they inherit the settings, the registry as read and
the notes, open their own connections to the app database (reads only), and send back each
model's valuation, pickled, with its computed figures cached in it. What spans models (flags,
overlaps, totals, value at risk, the ledger write) stays in this process.

The processes are forked with the objects alive so far out of the cyclic garbage collector's reach
(``gc.freeze``, as the Python documentation advises for fork without exec): otherwise each
worker's collections walk, and so copy page by page, every object it inherited (the imported
libraries' above all; measured on a loaded machine, 0.2-0.4 s less CPU over a 200-model
valuation, within the noise).

Only command-line processes use it (``refresh`` and ``revalue`` on a large portfolio): forking a
process that runs other threads, such as the dashboard's server, is not safe. A refresh first
forks its warehouse work (:func:`stream_from_child`, D69: the pulls, their saves and the overlap
count, in a child that opens its own connections), then imports the valuation's libraries and
forks the workers; no warehouse connection is ever opened in this process before a fork, and
no thread of its own runs at one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import logging
import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from valuetrack.context import Context

log = logging.getLogger(__name__)

MIN_MODELS_PER_WORKER = 20
"""Below this many models per worker the forks cost more than they save."""

_JOB: dict[str, Any] = {}  # what the forked workers inherit (set just before the fork)


def workers_for(n_models: int, cpus: int | None = None) -> int:
    """How many workers a command-line valuation of ``n_models`` uses: one per CPU (at most 4),
    and at least MIN_MODELS_PER_WORKER models each (1: no fork)."""
    cpus = cpus if cpus is not None else (multiprocessing.cpu_count() or 1)
    return max(1, min(cpus, 4, n_models // MIN_MODELS_PER_WORKER))


def value_models(ctx: Context, registered: list[Any], as_of: dt.date, alpha: float, notes: dict[str, Any],
                 prepare: Any, workers: int) -> dict[str, Any]:
    """Per model name: ``(valuation, figures to date)``, or the sentence saying why it could not be
    valued. The valuations' exchange-rate source is left unset (the caller sets its own). Empty when
    a worker died: the caller then values every model itself."""
    _JOB.update(ctx=ctx, registered=registered, as_of=as_of, alpha=alpha, notes=notes, prepare=prepare)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_start) as pool:
            _fork(pool)
            # one model per task, so that the slow (time-series) models spread over the workers
            return dict(pool.map(_value, range(len(registered))))
    except BrokenProcessPool as exc:  # a worker died (killed, out of memory): value in this process
        log.warning("a valuation worker process ended abruptly (%s); valuing in one process", exc)
        return {}
    finally:
        _JOB.clear()


class EarlyValuation:
    """The models valued while a refresh still pulls others (D57): each model's valuation starts in
    a worker as soon as its aggregates are stored (:meth:`ready`), and the refresh's own work (the
    other models' rows, the overlap counts, in its warehouse process: D69) runs beside them.

    :meth:`begin` (the refresh calls it once its refreshes are logged and its warehouse process is
    forked; no warehouse connection is open in this process) forks the workers, with the registry
    and the notes as read then;
    :meth:`collect` gives the valuations only when nothing but this refresh's own models changed
    the app database meanwhile (the registry, the notes and the refresh log:
    :func:`valuetrack.store.db.data_version_of`), else None, and the caller values the ordinary way.
    For command-line processes only, like :func:`value_models`.
    """

    def __init__(self, ctx: Context, as_of: dt.date, alpha: float, prepare: Any, workers: int) -> None:
        self._ctx, self._as_of, self._alpha, self._prepare, self._workers = ctx, as_of, alpha, prepare, workers
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[str, Any] = {}
        self._index: dict[str, int] = {}

    def begin(self, pending: int, token: tuple) -> None:
        """Import the valuation's libraries (once, here, for this process and the workers) and fork
        the workers. ``pending``: the refreshes logged and not finished yet, all this one's;
        ``token``: the app database's data version taken before any of them stored a model, as for
        any valuation (``ctx.ledger.token()``)."""
        ctx = self._ctx
        self._expected = (token[0], token[1], token[2] + pending)
        registered = ctx.registry.list()
        self._index = {r.name: i for i, r in enumerate(registered)}
        _import_valuation()
        _JOB.update(ctx=ctx, registered=registered, as_of=self._as_of, alpha=self._alpha, notes=ctx.notes.by_model(),
                    prepare=self._prepare)
        self._pool = ProcessPoolExecutor(self._workers, mp_context=multiprocessing.get_context("fork"),
                                         initializer=_start)
        # this process's objects stay frozen while the workers run (until the next fork, the value at
        # risk's, unfreezes them): the collections the results' unpickling triggers then walk only
        # what came after the fork (≈ 0.15 s less of full collections on the benchmark)
        _fork(self._pool, keep_frozen=True)

    def ready(self, names: Any) -> None:
        """Start valuing these models (their aggregates are stored); a model not registered is ignored."""
        if self._pool is None:
            return
        for name in names:
            if name in self._index and name not in self._futures:
                self._futures[name] = self._pool.submit(_value, self._index[name])

    def collect(self, as_of: dt.date, alpha: float) -> tuple[tuple, dict[str, Any]] | None:
        """``(token, per model (valuation, figures to date) or why it failed)``; None when it never
        began, values another as-of or alpha, the inputs changed beyond this refresh or a worker
        died. Ends the workers."""
        if self._pool is None or (as_of, alpha) != (self._as_of, self._alpha):
            self.close()
            return None
        self.ready(self._index)  # the models this refresh did not pull (retired, or not targeted)
        try:
            done = dict(f.result() for f in self._futures.values())  # (name, its result) each
        except BrokenProcessPool as exc:
            log.warning("a valuation worker process ended abruptly (%s); valuing again", exc)
            done = None
        finally:
            self.close()
        token = self._ctx.ledger.token()
        if done is None or token != self._expected:
            return None
        return token, done

    def close(self) -> None:
        """End the workers (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            _JOB.clear()


def _import_valuation() -> None:
    """Import what a valuation needs (a failure is left to the valuation to report).
    Not statsmodels' structural model (≈ 0.25 s): a structural model whose fit is kept (D65, every
    model past its horizon cap, every day) never fits, so a worker imports it when it first fits."""
    try:
        import babel.dates  # noqa: F401 - what the valuation imports on first use, once rather than in each worker
        import valuetrack.attribution.ab  # noqa: F401
        import valuetrack.attribution.methods.designs  # noqa: F401
        import valuetrack.attribution.timeseries  # noqa: F401
        import valuetrack.value.health  # noqa: F401
        import valuetrack.value.holdout  # noqa: F401
        import valuetrack.value.notes  # noqa: F401
        import valuetrack.value.portfolio  # noqa: F401
    except Exception:  # noqa: BLE001 - the workers import it again and say what is wrong
        log.debug("importing the valuation's libraries failed", exc_info=True)


def _fork(pool: ProcessPoolExecutor, *, keep_frozen: bool = False) -> None:
    """Fork the pool's processes now, with the objects alive so far out of their garbage
    collector's reach (this process collects them again afterwards, unless ``keep_frozen``)."""
    gc.freeze()
    try:
        pool.submit(int)  # a fork-context pool starts all its processes in its first submit
    finally:
        if not keep_frozen:
            gc.unfreeze()


def _start() -> None:
    # the parent's pooled connections must not be used from two processes: open new ones
    _JOB["ctx"].engine.dispose(close=False)


def _value(i: int) -> tuple[str, Any]:
    from valuetrack.value.portfolio import ModelValuation, failure_sentence, value_one

    ctx, reg = _JOB["ctx"], _JOB["registered"][i]
    try:
        v = ModelValuation.load(ctx, reg, _JOB["as_of"], alpha=_JOB["alpha"], fx=_fx(ctx),
                                notes=_JOB["notes"].get(reg.name, ()))
        total = value_one(v, _JOB["prepare"])
        sent = v.for_parent()  # what the parent reads of it (D59)
    except Exception as exc:  # noqa: BLE001 - one model's failure never reaches the others
        return reg.name, failure_sentence(reg, exc)
    return reg.name, (sent, total)


def _fx(ctx: Context) -> Any:
    from valuetrack.value.portfolio import FxSource

    if "fx" not in _JOB:  # one per worker: the rates are read once per process
        _JOB["fx"] = FxSource(ctx)
    return _JOB["fx"]


def stream_from_child(work: Callable[[Callable[[Any], None]], None], on_item: Callable[[Any], None],
                      meanwhile: Callable[[], None] | None = None) -> bool:
    """Run ``work(send)`` in a process forked now and ``meanwhile()`` in this one; then call
    ``on_item(item)`` here for each item the child passed to ``send`` (pickled, in order), as it
    arrives, until the child ends. True when the child completed ``work``; False when it raised or
    died (what it sent before is delivered; the caller does the rest itself). The child inherits
    everything and shares nothing but the pipe: it must open its own database connections. For
    command-line processes with no other thread running, like :func:`value_models`."""
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(ImportError, AttributeError, OSError):  # room for the items while ``meanwhile`` runs (Linux)
        import fcntl

        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_fd)
        code = 1
        try:
            with os.fdopen(write_fd, "wb") as out:
                def send(item: Any) -> None:
                    pickle.dump(item, out, protocol=pickle.HIGHEST_PROTOCOL)
                    out.flush()

                work(send)
                send(_COMPLETE)
            code = 0
        except BaseException as exc:  # noqa: BLE001 - the parent does the rest (its type only: no secret in a log)
            log.warning("a forked process stopped: %s", type(exc).__name__)
        finally:
            os._exit(code)  # no atexit handler, no inherited finaliser runs twice
    os.close(write_fd)
    complete = False
    received = os.fdopen(read_fd, "rb")
    try:
        if meanwhile is not None:
            meanwhile()
        while True:
            try:
                item = pickle.load(received)
            except EOFError:
                break
            if type(item) is str and item == _COMPLETE:  # (an item's own == may not give a bool)
                complete = True
            else:
                on_item(item)
    finally:
        received.close()  # (if this process raised, the child's next send fails and it ends)
        _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)  # (minus the signal's number when one ended it)
    if not complete or code != 0:
        log.warning("a forked process ended before its work was done (exit code %s); doing the rest in this one", code)
    return complete and code == 0


_COMPLETE = "valuetrack: the forked work is complete"


def in_child(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Start ``fn()`` in a process forked now (it inherits everything ``fn`` reads, nothing is
    pickled but its result); returns the function that waits for that result, raising what
    ``fn`` raised. A child that dies is replaced by a call in this process. For computations that
    use no database connection, in command-line processes only, like :func:`value_models`."""
    _BACKGROUND.append(fn)
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork"))
    _fork(pool)
    future = pool.submit(_call_child, len(_BACKGROUND) - 1)

    def result() -> Any:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            log.warning("a background process ended abruptly (%s); computing in this process", exc)
            return fn()
        finally:
            pool.shutdown(cancel_futures=True)
            _BACKGROUND.remove(fn)

    return result


_BACKGROUND: list[Callable[[], Any]] = []  # what a child forked by in_child runs (inherited)


def _call_child(i: int) -> Any:
    return _BACKGROUND[i]()
