"""The comparison helper: intervals against scipy's, verdicts in the metric's direction, one seed, ranking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from c2f.experiment import Outcome
from c2f.stats import CANNOT_TELL, NO_DIFFERENCE, compare, interval, ranking


def _scipy_t(values):
    v = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=scipy_stats.sem(v))


def test_interval_over_seeds_is_scipys_t_interval():
    a, b = [90.0, 91.5, 89.0, 90.2], [94.1, 95.0, 93.2, 95.3]
    c = compare(a, b, "test_nll_nats", names=("the LVAE", "the HVAE"))
    low, high = _scipy_t(np.subtract(a, b))
    assert (c.difference.low, c.difference.high) == pytest.approx((low, high))
    assert c.difference.mean == pytest.approx(np.mean(np.subtract(a, b)))
    assert c.differences == pytest.approx(tuple(np.subtract(a, b)))
    assert c.verdict == "A better" and c.better == "the LVAE", "a lower NLL is better"
    assert c.sentence() == (f"the LVAE is better than the HVAE by {-c.difference.mean:.1f} nats (95 % CI {-high:.1f} to "
                            f"{-low:.1f} over 4 seeds)")


def test_direction_follows_the_metric():
    a, b = [-90.0, -91.0, -90.5], [-95.0, -94.0, -96.5]
    assert compare(a, b, "test_elbo_nats").verdict == "A better", "a higher ELBO is better"
    assert compare(a, b, "test_nll_nats").verdict == "B better", "a higher NLL is worse"
    assert compare(b, a, "test_elbo_nats", names=("x", "y")).better == "y"
    assert compare(a, b, "kl_nats", higher=True).verdict == "A better"
    with pytest.raises(ValueError, match="direction"):
        compare(a, b, "kl_nats")


def test_interval_containing_zero_says_no_difference():
    a, b = [90.0, 92.0, 89.0], [90.5, 90.0, 90.1]
    c = compare(a, b, "test_nll_nats", names=("A", "B"))
    low, high = _scipy_t(np.subtract(a, b))
    assert low < 0 < high
    assert c.verdict == NO_DIFFERENCE and c.better is None
    assert c.sentence() == (f"no difference between A and B at this budget (A − B: {low:.1f} to {high:.1f} nats, "
                            f"95 % CI over 3 seeds)".replace("-", "−"))


def test_one_seed_without_per_image_values_cannot_tell():
    c = compare([90.0], [95.0], "test_nll_nats", names=("A", "B"))
    assert c.verdict == CANNOT_TELL and c.better is None
    assert c.difference.low is None and c.difference.high is None
    assert "cannot tell" in c.sentence() and "CI" not in c.sentence()


def test_one_seed_with_per_image_values_is_a_t_interval_over_images():
    g = np.random.default_rng(0)
    a, b = g.normal(90, 5, size=(1, 200)), g.normal(91, 5, size=(1, 200))
    c = compare(a, b, "test_nll_nats")
    low, high = _scipy_t((a - b)[0])
    assert (c.difference.low, c.difference.high) == pytest.approx((low, high))
    assert c.difference.over == "200 test images, one seed"


def test_outcomes_use_their_runs_and_names():
    a = Outcome("lvae", [0, 1, 2], runs=[{"test_nll_nats": v} for v in (90.0, 91.0, 90.5)])
    b = Outcome("hvae", [0, 1, 2], runs=[{"test_nll_nats": v} for v in (95.0, 94.0, 96.0)])
    c = compare(a, b, "test_nll_nats")
    assert (c.a, c.b, c.verdict) == ("lvae", "hvae", "A better")
    with pytest.raises(ValueError, match="same seeds"):
        compare(a, Outcome("x", [5, 6, 7], runs=b.runs), "test_nll_nats")
    per_image = Outcome("p", [0, 1, 2], runs=[{"test_nll_nats": 1.0, "test_nll_nats_per_image": [1.0, 2.0]}] * 3)
    assert compare(per_image, per_image, "test_nll_nats").difference.over == "3 seeds and 2 test images"


def test_crossed_interval_covers_the_true_difference():
    """Seeds and test images are both random (every seed sees the same images): the interval over both
    covers the true mean difference in at least 95 % of simulated experiments (it errs wide, by design),
    where an interval over seeds alone, which ignores which images were drawn, covers it far less often."""
    g = np.random.default_rng(1)
    trials, seeds, images, covered, covered_seeds = 400, 3, 100, 0, 0
    for _ in range(trials):
        d = (0.3 * g.normal(size=(seeds, 1)) + 6.0 * g.normal(size=(1, images))
             + 0.5 * g.normal(size=(seeds, images)))
        i, s = interval(d), interval(d.mean(1))
        covered += i.low <= 0 <= i.high
        covered_seeds += s.low <= 0 <= s.high
    assert covered / trials >= 0.93
    assert covered_seeds / trials < 0.8


def test_ranking_table_best_first_with_intervals():
    outcomes = {"vae": [95.0, 96.0, 95.5], "lvae": [90.0, 91.0, 90.1], "hvae": [90.2, 91.1, 90.0]}
    table = ranking(outcomes, "test_nll_nats")
    assert list(table.index) == ["lvae", "hvae", "vae"]
    assert table.loc["lvae", "verdict"] == "best"
    assert table.loc["hvae", "verdict"] == NO_DIFFERENCE
    assert table.loc["vae", "verdict"] == "worse than lvae"
    low, high = _scipy_t(outcomes["vae"])
    assert table.loc["vae", "95 % CI"] == f"{low:.1f} to {high:.1f}"


def test_evaluate_per_image_values_feed_the_comparison(tiny_images):
    """evaluate(per_image=True) keeps each image's ELBO and NLL (their means are the reported numbers, and the
    numbers do not move); with one seed, compare then gives an interval over the test images."""
    from c2f.evaluate import evaluate
    from c2f.models import VAE, VAEConfig

    torch.manual_seed(0)
    a, b = VAE(VAEConfig(latent_dim=3, hidden=(16,))), VAE(VAEConfig(latent_dim=3, hidden=(8,)))
    plain = evaluate(a, tiny_images, iw_samples=3, batch_size=16)
    full = evaluate(a, tiny_images, iw_samples=3, batch_size=16, per_image=True)
    assert {k: v for k, v in full.items() if not k.endswith("per_image")} == plain
    assert len(full["nll_nats_per_image"]) == len(tiny_images)
    assert np.mean(full["nll_nats_per_image"]) == pytest.approx(plain["nll_nats"])
    assert np.mean(full["elbo_nats_per_image"]) == pytest.approx(plain["elbo_nats"])
    runs = [{f"test_{k}": v for k, v in evaluate(m, tiny_images, iw_samples=3, per_image=True).items()} for m in (a, b)]
    c = compare(Outcome("a", [0], runs=runs[:1]), Outcome("b", [0], runs=runs[1:]), "test_nll_nats")
    assert c.difference.over == f"{len(tiny_images)} test images, one seed" and c.difference.low is not None
    assert c.difference.mean == pytest.approx(runs[0]["test_nll_nats"] - runs[1]["test_nll_nats"], abs=1e-4)
