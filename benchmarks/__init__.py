"""valuetrack benchmarks: ``python -m benchmarks [NAME] [--quick]``.

Each benchmark is a module ``benchmarks/bench_NAME.py`` with a function
``run(quick: bool) -> dict`` that returns its sizes and figures; the runner adds the machine and
writes ``benchmarks/results/NAME.json``. Figures are ratios against a baseline measured in the same
run wherever a baseline exists, so they stay meaningful on another machine.
"""
