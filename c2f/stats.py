"""Comparisons with their uncertainty: the one way the book ranks two models.

:func:`compare` takes the paired difference A − B of a metric per seed (both models trained with the same
seeds and scored on the same test images), its mean and a 95 % interval, and gives a verdict that respects
the metric's direction (:func:`c2f.evaluate.higher_is_better`)::

    c = compare(results["lvae"], results["hvae"], "test_nll_nats", names=("the LVAE", "the HVAE"))
    c.verdict     # "A better", "B better", "no difference at this budget" or "cannot tell (one seed)"
    c.sentence()  # "the LVAE is better than the HVAE by 4.2 nats (95 % CI 2.1 to 6.3 over 3 seeds)"

The interval is a t-interval. Over seeds alone, from the per-seed differences (S − 1 degrees of freedom).
Where per-image values are given (a metric that is a mean over test images), the test images are a second
source of noise, crossed with the seeds (every seed sees the same images): the variance of the mean is
estimated as var(seed means) / S + var(image means) / N, which counts the seed × image residual twice (so
errs wide), with Satterthwaite's degrees of freedom. With one seed and per-image values the interval is over
the images only, and says so; with one seed and no per-image values there is nothing to estimate it from,
and the verdict says it cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from c2f.evaluate import higher_is_better

NO_DIFFERENCE = "no difference at this budget"
CANNOT_TELL = "cannot tell (one seed)"


@dataclass(frozen=True)
class Interval:
    """The mean of a quantity and its confidence interval (None: one value, nothing to estimate it from)."""

    mean: float
    low: float | None
    high: float | None
    over: str  # what the interval is over: "3 seeds", "3 seeds and 500 test images", "500 test images, one seed"
    confidence: float = 0.95


@dataclass(frozen=True)
class Comparison:
    """Model A against model B on one metric: the difference A − B per seed and its interval."""

    metric: str
    a: str  # the names the sentence uses, e.g. "the LVAE"
    b: str
    differences: tuple[float, ...]  # A − B per seed (the mean over the test images)
    difference: Interval  # of the mean difference A − B
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        """"A better", "B better", "no difference at this budget" (the interval contains 0) or "cannot tell
        (one seed)"."""
        d = self.difference
        if d.low is None:
            return CANNOT_TELL
        if d.low <= 0 <= d.high:
            return NO_DIFFERENCE
        return "A better" if (d.low > 0) == self.higher_is_better else "B better"

    @property
    def better(self) -> str | None:
        """The name of the better model, or None when the interval cannot tell them apart."""
        return {"A better": self.a, "B better": self.b}.get(self.verdict)

    def sentence(self, unit: str = "nats", digits: int = 1, scale: float = 1.0) -> str:
        """The comparison as a phrase for prose: "A is better than B by 4.2 nats (95 % CI 2.1 to 6.3 over 3 seeds)",
        "no difference between A and B at this budget (A − B: −0.4 to 1.1 nats, 95 % CI over 3 seeds)" or,
        with one seed, the difference and that it cannot tell. `scale` multiplies every number (100 for %)."""
        d, unit = self.difference, f" {unit}" if unit and unit != "%" else unit
        level = f"{100 * d.confidence:g} % CI"
        if d.low is None:
            return (f"{self.a} − {self.b} = {_number(scale * d.mean, digits)}{unit} on one seed, which cannot "
                    f"tell them apart")
        if self.better is None:
            return (f"no difference between {self.a} and {self.b} at this budget ({self.a} − {self.b}: "
                    f"{_number(scale * d.low, digits)} to {_number(scale * d.high, digits)}{unit}, {level} over "
                    f"{d.over})")
        sign = 1 if d.low > 0 else -1  # the gain of the better model is |A − B|
        low, high = sorted((sign * scale * d.low, sign * scale * d.high))
        worse = self.b if self.better == self.a else self.a
        return (f"{self.better} is better than {worse} by {_number(sign * scale * d.mean, digits)}{unit} ({level} "
                f"{_number(low, digits)} to {_number(high, digits)} over {d.over})")


def interval(values, *, confidence: float = 0.95) -> Interval:
    """The mean of `values` and its t-interval: `values` are one number per seed [S], or per seed and test
    image [S, N] (the mean over both; see the module's note on how the two sources of noise combine)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim not in (1, 2) or v.size == 0:
        raise ValueError(f"values must be [seeds] or [seeds, images], got shape {v.shape}")
    seeds = v.shape[0]
    s = "seed" if seeds == 1 else "seeds"
    if v.ndim == 1 or v.shape[1] == 1:
        v = v.reshape(seeds)
        if seeds == 1:
            return Interval(float(v[0]), None, None, "one seed", confidence)
        var, df, over = v.var(ddof=1) / seeds, seeds - 1, f"{seeds} {s}"
    elif seeds == 1:
        images = v.shape[1]
        var, df, over = v[0].var(ddof=1) / images, images - 1, f"{images} test images, one seed"
    else:
        images = v.shape[1]
        var_seeds, var_images = v.mean(1).var(ddof=1) / seeds, v.mean(0).var(ddof=1) / images
        var = var_seeds + var_images
        df = var ** 2 / (var_seeds ** 2 / (seeds - 1) + var_images ** 2 / (images - 1)) if var > 0 else np.inf
        over = f"{seeds} {s} and {images} test images"
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df) * np.sqrt(var)) if var > 0 else 0.0
    mean = float(v.mean())
    return Interval(mean, mean - half, mean + half, over, confidence)


def compare(a, b, metric: str, *, names: tuple[str, str] | None = None, higher: bool | None = None,
            confidence: float = 0.95) -> Comparison:
    """Compare models `a` and `b` on `metric`, paired by seed (and by test image).

    `a` and `b` are each an :class:`c2f.experiment.Outcome` (its per-seed ``runs[i][metric]``, or per-image
    values when a run keeps them as ``runs[i][metric + "_per_image"]``), a sequence of per-seed values, or an
    array [seeds, images] of per-image values. `names` default to the outcomes' names. The direction is
    :func:`c2f.evaluate.higher_is_better` of `metric` unless `higher` gives it."""
    higher = higher_is_better(metric) if higher is None else higher
    if higher is None:
        raise ValueError(f"{metric!r} has no direction (see c2f.evaluate.higher_is_better): pass higher=")
    if hasattr(a, "seeds") and hasattr(b, "seeds") and list(a.seeds) != list(b.seeds):
        raise ValueError(f"paired comparison needs the same seeds, got {list(a.seeds)} and {list(b.seeds)}")
    va, vb = _values(a, metric), _values(b, metric)
    if va.ndim != vb.ndim:  # one side without per-image values: compare the per-seed means
        va, vb = (v.mean(1) if v.ndim == 2 else v for v in (va, vb))
    if va.shape != vb.shape:
        raise ValueError(f"paired comparison needs as many seeds (and images) on both sides: {va.shape} vs "
                         f"{vb.shape}")
    names = names or (getattr(a, "name", "A"), getattr(b, "name", "B"))
    d = va - vb
    per_seed = d.mean(1) if d.ndim == 2 else d
    return Comparison(metric, names[0], names[1], tuple(float(x) for x in per_seed),
                      interval(d, confidence=confidence), higher)


def ranking(outcomes: Mapping[str, object], metric: str, *, unit: str = "nats", digits: int = 1,
            scale: float = 1.0, higher: bool | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """A ranking table, best first: each model's mean and its interval, and its difference from the best
    model with that interval and the verdict (the rows :func:`compare` would write). `outcomes` maps a
    model's label to what :func:`compare` takes."""
    higher = higher_is_better(metric) if higher is None else higher
    if higher is None:
        raise ValueError(f"{metric!r} has no direction (see c2f.evaluate.higher_is_better): pass higher=")
    own = {name: interval(_values(o, metric), confidence=confidence) for name, o in outcomes.items()}
    order = sorted(own, key=lambda name: -own[name].mean if higher else own[name].mean)
    best, level = order[0], f"{100 * confidence:g} % CI"
    rows = {}
    for name in order:
        c = compare(outcomes[name], outcomes[best], metric, names=(name, best), higher=higher,
                    confidence=confidence)
        rows[name] = {f"{metric} ({unit})": _number(scale * own[name].mean, digits),
                      level: _span(own[name], digits, scale),
                      f"− {best} ({unit})": "" if name == best else _number(scale * c.difference.mean, digits),
                      f"{level} of the difference": "" if name == best else _span(c.difference, digits, scale),
                      "verdict": "best" if name == best else _verdict_row(c)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(f"over {own[best].over}")


def _verdict_row(c: Comparison) -> str:
    return {"A better": f"better than {c.b}", "B better": f"worse than {c.b}"}.get(c.verdict, c.verdict)


def _values(x, metric: str) -> np.ndarray:
    """Per-seed [S] or per-seed-and-image [S, N] values of `metric` in `x` (see :func:`compare`)."""
    if hasattr(x, "runs"):
        if all(f"{metric}_per_image" in r for r in x.runs):
            return np.stack([np.asarray(r[f"{metric}_per_image"], dtype=np.float64) for r in x.runs])
        return np.array([float(r[metric]) for r in x.runs])
    return np.asarray(x, dtype=np.float64)


def _number(x: float, digits: int) -> str:
    text = f"{x:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text.replace("-", "−")


def _span(i: Interval, digits: int, scale: float) -> str:
    return "–" if i.low is None else f"{_number(scale * i.low, digits)} to {_number(scale * i.high, digits)}"

