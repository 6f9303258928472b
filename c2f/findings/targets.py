"""A page's target on a per-seed metric, met or missed only where the 95 % interval over seeds says so."""

from __future__ import annotations

from c2f.stats import interval


def target_verdict(values, target: float, *, higher: bool = True) -> str:
    """"met" when the 95 % interval of the mean (over seeds [S], or seeds and test images [S, N]) lies on the good side of `target` (above it when
    `higher` is better, below it otherwise), "missed" when it lies on the other side, else that this run cannot
    tell (with one seed there is no interval)."""
    i = interval(values)
    if i.low is None:
        return "cannot tell (one seed)"
    good, bad = (i.low >= target, i.high < target) if higher else (i.high <= target, i.low > target)
    return "met" if good else "missed" if bad else "cannot tell at this budget"
