"""The worst problem first (docs/decisions.md D42): one order for every list of flags, by the
severity of the rule, then by the money at stake; "Needs attention" cuts from the least severe end."""

from __future__ import annotations

import itertools
import math
import random
from types import SimpleNamespace

import numpy as np

from valuetrack.value.flags import RULES, Flag, at_stake, ordered, sort_key, truncate, with_stakes
from valuetrack.value.roi import money_value


def flag(model: str, kind: str, stake: float | None = None) -> Flag:
    return Flag(model, kind, f"{kind} reason for {model}", "act on it", None, {}, stake)


def test_severity_first_then_money_at_stake_then_name() -> None:
    by_severity = sorted(RULES, key=lambda r: -r.severity)
    # every type, each twice: the cheaper flag named first so name order and stake order disagree
    flags = [flag(f"a-{r.type}", r.type, 10.0) for r in RULES] + [flag(f"z-{r.type}", r.type, 1e6) for r in RULES]
    random.Random(1).shuffle(flags)
    got = [(f.type, f.model) for f in ordered(flags)]
    assert got == [(r.type, m) for r in by_severity for m in (f"z-{r.type}", f"a-{r.type}")]
    # a hundred times more money at stake never lifts a flag above a more severe one
    worst, mild = by_severity[0].type, by_severity[-1].type
    assert [f.type for f in ordered([flag("m", mild, 1e9), flag("w", worst, 1.0)])] == [worst, mild]
    # equal stakes: by name; unknown stakes count as none; a type no rule knows goes last
    assert [f.model for f in ordered([flag("b", worst, 5.0), flag("a", worst, 5.0), flag("c", worst, None)])] == ["a", "b", "c"]
    assert ordered([flag("x", "no_such_rule", 1e9), flag("y", mild, 0.0)])[-1].model == "x"


def test_the_same_order_for_flags_and_their_dicts() -> None:
    """Report snapshots hold flags as dicts (to_dict): they sort exactly like the flags."""
    flags = [flag(f"m{i}", r.type, float(s)) for i, (r, s) in enumerate(itertools.product(RULES, (0, 7, 3)))]
    random.Random(2).shuffle(flags)
    assert [f.to_dict() for f in ordered(flags)] == ordered([f.to_dict() for f in flags])
    assert [sort_key(f) for f in flags] == [sort_key(f.to_dict()) for f in flags]


def test_truncation_never_hides_a_flag_more_severe_than_one_it_shows() -> None:
    rng = random.Random(3)
    severity = {r.type: r.severity for r in RULES}
    for _ in range(300):
        flags = [flag(f"m{i}", rng.choice(RULES).type, rng.choice([None, 0.0, rng.uniform(0, 1e6)]))
                 for i in range(rng.randint(0, 15))]
        limit = rng.randint(1, 8)
        shown, hidden = truncate(flags, limit)
        assert len(shown) == min(limit, len(flags)) and len(shown) + len(hidden) == len(flags)
        if shown and hidden:
            assert min(severity[f.type] for f in shown) >= max(severity[f.type] for f in hidden)
            # within the boundary severity the cut keeps the most money at stake
            edge = min(severity[f.type] for f in shown)
            kept = [f.at_stake or 0.0 for f in shown if severity[f.type] == edge]
            cut = [f.at_stake or 0.0 for f in hidden if severity[f.type] == edge]
            assert not cut or min(kept) >= max(cut)


def test_money_at_stake_is_the_expected_loss_or_the_cost() -> None:
    """E[max(0, −net)] under N(net, se²) — the figure ModelValue.expected_loss stores — checked by
    numerical integration; without an estimate, the cost to date."""
    net, se = -1_500.0, 2_000.0
    x = np.linspace(net - 12 * se, net + 12 * se, 400_001)
    density = np.exp(-0.5 * ((x - net) / se) ** 2) / (se * math.sqrt(2 * math.pi))
    integral = float(np.sum(np.maximum(0.0, -x) * density) * (x[1] - x[0]))
    el = float(money_value(1.0, se, 1.0, 1.0, True, 1.0 - net).expected_loss)  # gross 1, cost 1 − net: net = net
    assert math.isclose(el, integral, rel_tol=1e-6)
    assert at_stake(el, 900.0) == el
    assert at_stake(None, 900.0) == 900.0 and at_stake(float("nan"), 900.0) == 900.0 and at_stake(None, None) == 0.0


def test_with_stakes_sets_each_models_figure_and_orders() -> None:
    values = [SimpleNamespace(model="cheap", expected_loss=10.0, cost=5.0),
              SimpleNamespace(model="dear", expected_loss=9_000.0, cost=5.0),
              SimpleNamespace(model="blind", expected_loss=None, cost=700.0)]
    kind = RULES[-1].type
    out = with_stakes([flag("cheap", kind), flag("blind", kind), flag("dear", kind)], values)
    assert [(f.model, f.at_stake) for f in out] == [("dear", 9_000.0), ("blind", 700.0), ("cheap", 10.0)]
