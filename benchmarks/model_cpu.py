"""CPU of one model's valuation as a valuation worker runs it (value/parallel.py): load its stored
aggregates, estimate, figures to date, the record's per-model part (``valuation.preparer``) and
what is sent back to the parent (``ModelValuation.for_parent``), for up to 40 registered models of
one method, in this process. Prints the CPU per model of the best and the median of 5 passes (after
one warm-up pass); ``--profile tottime|cumulative`` adds a cProfile of one more pass.

Run it in a folder holding a ``valuetrack.toml`` whose app database has been refreshed (it only
reads), e.g. on a copy of the 200-model benchmark's:

    python benchmarks/model_cpu.py --method ab --as-of 2026-06-01
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ab", help="attribution method of the models to value (ab, structural, ...)")
    parser.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--profile", choices=("tottime", "cumulative"))
    args = parser.parse_args()

    import statsmodels.tsa.statespace.structural  # noqa: F401 - a fit's first import is not a valuation's CPU

    from valuetrack.context import open_context
    from valuetrack.valuation import preparer
    from valuetrack.value.portfolio import FxSource, ModelValuation, value_one

    ctx = open_context()
    regs = [r for r in ctx.registry.list() if r.spec.attribution.method == args.method][: args.models]
    if not regs:
        raise SystemExit(f"no registered model uses the method {args.method!r}")
    prepare, notes, fx = preparer(ctx, 0.05), ctx.notes.by_model(), FxSource(ctx)

    def one_pass() -> None:
        for reg in regs:
            v = ModelValuation.load(ctx, reg, args.as_of, fx=fx, notes=notes.get(reg.name, ()))
            value_one(v, prepare)
            v.for_parent()

    one_pass()
    per_model = []
    for _ in range(5):
        t = time.process_time()
        one_pass()
        per_model.append((time.process_time() - t) / len(regs) * 1000)
    print(f"{len(regs)} {args.method} models: CPU per model best {min(per_model):.2f} ms, "
          f"median {statistics.median(per_model):.2f} ms")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        one_pass()
        profile.disable()
        pstats.Stats(profile).sort_stats(args.profile).print_stats(40)


if __name__ == "__main__":
    main()
