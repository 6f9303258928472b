"""Chapter 08 (synthesis): the findings, written from the run's numbers."""

from __future__ import annotations

from itertools import combinations

import numpy as np

from c2f.stats import CANNOT_TELL, NO_DIFFERENCE, compare


def _describe(values) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f} (worst {v.min():.3f})" if len(v) > 1 else "")


def family_line(family: str, chapter: str, order: str, at: dict[float, list[float]],
                to_accuracy: dict[float, list[float | None]]) -> str:
    """One family on the common axes: the decoded-image class accuracy at each rate of `at` (a value per
    seed, mean ± std and the worst seed) and the rate at which it reaches each accuracy of `to_accuracy`
    (per seed; None where that seed never does)."""
    parts = [f"{_describe(v)} at {r:g} nats" for r, v in at.items()]
    reach = []
    for acc, rates in to_accuracy.items():
        got = [r for r in rates if r is not None]
        if len(got) == len(rates):
            v = np.asarray(got)
            reach.append(f"accuracy {acc:g} reached at {v.mean():.2f}"
                         + (f" ± {v.std(ddof=1):.2f} nats" if len(v) > 1 else " nats"))
        else:
            missed = len(rates) - len(got)
            reach.append(f"accuracy {acc:g} not reached by {missed} of {len(rates)} "
                         + ("seed" if len(rates) == 1 else "seeds"))
    return (f"{family} (chapter {chapter}; {order}): decoded-image class accuracy {', '.join(parts)}; "
            f"{'; '.join(reach)}")


def differences(values: dict[str, list[float]], what: str) -> list[str]:
    """Every pair of families compared on `what` (an accuracy, a value per seed, the same seeds for all)
    through :func:`c2f.stats.compare`: the differences whose 95 % interval excludes 0, one line each, then
    the pairs that show no difference at this budget, named (or how many cannot be told apart with one seed)."""
    lines, none, cannot = [], [], []
    for a, b in combinations(values, 2):
        c = compare(values[a], values[b], "accuracy", names=(a, b))
        if c.better is not None:
            lines.append(f"{what}, {a} against {b}: {c.sentence('', 3)}")
        else:
            (cannot if c.verdict == CANNOT_TELL else none).append(f"{a}–{b}")
    if none:
        lines.append(f"{what}: {NO_DIFFERENCE} for the other {len(none)} pair(s): {', '.join(none)}")
    if cannot:
        lines.append(f"{what}: {len(cannot)} pair(s) {CANNOT_TELL}")
    return lines


def one_curve_line(at: dict[str, dict[float, list[float]]], flat: str, grouped: list[str],
                   whole: dict[str, float]) -> str:
    """Whether the `grouped` families (progressive models, 1-D groups) lie on one curve with the `flat`
    family's KL-sorted units: every family against `flat` through :func:`c2f.stats.compare` at every rate of
    `at[flat]` that both codes reach (`whole`: each family's whole-code rate, the smallest over seeds; beyond
    it a curve is only held, not measured). The finding survives when no comparison's interval excludes 0
    (with one seed it cannot be told)."""
    grouped = [g for g in grouped if g in at and g != flat]
    if flat not in at or not grouped:
        return f"the one-curve comparison needs {flat} and a progressive family on this page"
    apart, cannot, used = [], False, set()
    for g in grouped:
        for r in [r for r in at[flat] if r <= min(whole[g], whole[flat])]:
            used.add(r)
            c = compare(at[g][r], at[flat][r], "accuracy", names=(g, flat))
            cannot |= c.verdict == CANNOT_TELL
            if c.better is not None:
                apart.append(f"at {r:g} nats {c.sentence('', 3)}")
    if not used:
        return f"no rate of {', '.join(f'{r:g}' for r in at[flat])} nats lies within both {flat}'s and the progressive codes"
    rates = ", ".join(f"{r:g}" for r in sorted(used))
    if apart:
        return (f"the progressive models' groups and {flat}'s KL-sorted units do not lie on one curve: "
                + "; ".join(apart))
    if cannot:
        return f"whether {', '.join(grouped)} and {flat} lie on one curve {CANNOT_TELL}"
    return (f"{', '.join(grouped)} and {flat}'s KL-sorted units lie on one accuracy–rate curve: "
            f"{NO_DIFFERENCE} at any of {rates} nats")


def fano_line(points: list[tuple[str, float, float, float]]) -> str:
    """The check of the headline measure against Fano's bound: `points` are (family, rate, accuracy,
    excess) with the excess of :func:`c2f.synthesis.fano_excess` (> 0 breaks the bound)."""
    worst = max(points, key=lambda p: p[3])
    verdict = "no point exceeds" if worst[3] <= 0 else "SOME POINTS EXCEED"
    return (f"Fano check over {len(points)} points: {verdict} the bound of its rate (closest: {worst[0]} at "
            f"{worst[1]:.2f} nats, accuracy {worst[2]:.3f}, {worst[3]:+.3f} from the bound plus three standard "
            f"errors)")
