"""Chapter 01's findings from small made-up numbers: a clear difference, no difference, unequal budgets."""

from __future__ import annotations

import numpy as np

from c2f.experiment import Outcome
from c2f.findings import ch01


def outcome(name, elbo, nll):
    """One seed with per-image ELBO and NLL values."""
    return Outcome(name, [0], runs=[{"test_elbo_nats": float(np.mean(elbo)), "test_nll_nats": float(np.mean(nll)),
                                     "test_elbo_nats_per_image": list(elbo), "test_nll_nats_per_image": list(nll)}])


NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.1])


def test_a_clear_difference_names_the_better_model():
    results = {"vae_mlp": outcome("vae_mlp", -100 + NOISE, 95 + NOISE), "vae_conv": outcome("vae_conv", -95 + NOISE,
                                                                                              90 - NOISE)}
    text = ch01.comparison(results, {"vae_mlp": 6, "vae_conv": 6}, 100)
    assert text.count("the conv VAE is better than the MLP VAE by 5.0 nats") == 2 and "same budget of 6 epochs" in text
    assert "8 test images, one seed" in text


def test_no_difference_is_said_instead_of_a_ranking():
    results = {"vae_mlp": outcome("vae_mlp", -100 + NOISE, 95 + NOISE),
               "vae_conv": outcome("vae_conv", -100 + NOISE[::-1], 95 + NOISE[::-1])}
    text = ch01.comparison(results, {"vae_mlp": 6, "vae_conv": 6}, 100)
    assert text.count("no difference between the conv VAE and the MLP VAE at this budget") == 2
    assert "better" not in text


def test_unequal_budgets_are_not_compared():
    results = {"vae_mlp": outcome("vae_mlp", -100 + NOISE, 95 + NOISE), "vae_conv": outcome("vae_conv", -9 + NOISE,
                                                                                              9 + NOISE)}
    text = ch01.comparison(results, {"vae_mlp": 6, "vae_conv": 2}, 100)
    assert "not compared" in text and "better" not in text


def test_target_met_missed_or_undecided_by_the_interval():
    assert ch01.target([80 + NOISE], 100).split(": ")[1].startswith("met")
    assert ch01.target([90 + NOISE], 100).split(": ")[1].startswith("missed")
    assert "cannot tell at this budget" in ch01.target([84.5 + NOISE], 100)
    assert "cannot tell (one seed)" in ch01.target([84.0], 100)


def test_convergence_units_and_iw_lines():
    assert "the conv VAE had not converged" in ch01.convergence({"vae_mlp": 0.05, "vae_conv": 0.4})
    assert "neither rose" in ch01.convergence({"vae_mlp": 0.05, "vae_conv": -0.4})
    text = ch01.units({"vae_mlp": (20, 25, 5), "vae_conv": (18, 30, 12)}, 32, 0.08)
    assert "20 of 32 (the MLP VAE) and 18 of 32 (the conv VAE)" in text and "at most 0.08 nats" in text
    text = ch01.iw_tightening({"vae_mlp": (0.1, 0.9), "vae_conv": (0.0, 0.3)}, [1, 10, 100, 1000], 100, 200)
    assert "-0.90 (the MLP VAE) and -0.30 (the conv VAE) nats from $K = 100$ to $K = 1000$" in text
