from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def available() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def machine() -> dict:
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("name", nargs="?", help=f"one of: {', '.join(available())} (all when omitted)")
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument("--models", type=int, help="portfolio size, for the benchmarks that take one (app)")
    parser.add_argument("--baseline", metavar="COMMIT",
                        help="value only: also time the refreshes of this commit's code (a git worktree), "
                             "alternated with this code's on the same data, and report the ratios")
    parser.add_argument("--pairs", type=int, default=5, help="with --baseline: alternated incremental runs of each code")
    args = parser.parse_args(argv)
    names = [args.name] if args.name else available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; available: {', '.join(available())}")
    if args.baseline and names != ["value"]:
        parser.error("--baseline is for the value benchmark only: python -m benchmarks value --baseline COMMIT")
    if args.pairs < 1:
        parser.error(f"--pairs must be at least 1 (got {args.pairs})")
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.time()
        extra = {"models": args.models} if args.models else {}
        if args.baseline:
            extra.update(baseline=args.baseline, pairs=args.pairs)
        figures = module.run(quick=args.quick, **extra)
        out = {
            "benchmark": name,
            "quick": args.quick,
            "run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "machine": machine(),
            **figures,
        }
        path = RESULTS / (f"{name}{'-quick' if args.quick else ''}{f'-{args.models}' if args.models else ''}"
                          f"{'-baseline' if args.baseline else ''}.json")
        path.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"{name}: wrote {path.relative_to(HERE.parent)}", file=sys.stderr)
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
