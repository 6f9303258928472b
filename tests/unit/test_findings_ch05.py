"""Chapter 05's findings: the sentences its cells print, written from small fake numbers."""

from __future__ import annotations

import numpy as np

from c2f.evaluate import summarise
from c2f.experiment import Outcome
from c2f.findings import ch05

NAMES = {"exact": "Exact", "reinforce": "REINFORCE", "nvil": "NVIL"}


def outcome(accuracy: list[float], elbo: list[float] | None = None, clusters: float = 10.0) -> Outcome:
    runs = [{"test_accuracy": a, "test_elbo_nats": (elbo or [0.0] * len(accuracy))[i], "clusters_used": clusters}
            for i, a in enumerate(accuracy)]
    return Outcome("m", list(range(len(accuracy))), runs=runs, summary=summarise(runs))


def toy_run(final_loss: list[float], final_log_var: list[float]) -> dict:
    return {"loss": np.array([[0.2222, f] for f in final_loss]), "log_var": np.array([[0.0, v] for v in final_log_var])}


def test_toy_lines_compare_the_variance_with_reinforce_under_an_interval():
    toy = {"exact": toy_run([0.2178] * 3, [-np.inf] * 3),
           "reinforce": toy_run([0.2222, 0.2221, 0.2222], [-3.0, -3.1, -2.9]),
           "nvil": toy_run([0.2180, 0.2179, 0.2181], [-8.0, -8.2, -7.9])}
    lines = ch05.toy_lines(toy, NAMES, optimum=0.2178, uniform=0.2222, steps=100)
    assert lines[0] == "Exact      gap to the optimum left after 100 steps:   0.0 %"
    assert "REINFORCE  gap to the optimum left after 100 steps:  99.2 %" == lines[1]
    assert "NVIL is better than REINFORCE by 5.03" in lines[2] and lines[2].endswith("a variance 153× below REINFORCE's")
    toy["nvil"] = toy_run([0.2200] * 3, [-3.0, -3.2, -2.8])
    assert "no difference between NVIL and REINFORCE at this budget" in ch05.toy_lines(toy, NAMES, 0.2178, 0.2222,
                                                                                      100)[2]


def test_against_a_reference():
    lines = ch05.against({"both": outcome([0.96, 0.95, 0.97]), "no marginal KL": outcome([0.60, 0.50, 0.55]),
                          "random prototypes": outcome([0.96, 0.96, 0.95])}, "both")
    assert lines[0].startswith("both is better than no marginal KL by 41.0 percentage points")
    assert "no difference between random prototypes and both at this budget" in lines[1]
    one = ch05.against({"a": outcome([0.9]), "b": outcome([0.5])}, "b")
    assert one == ["a − b = 40.0 percentage points on one seed, which cannot tell them apart"]


def test_sweep_lines_compare_every_weight_with_the_one_used():
    sweep = {0.0: outcome([0.40, 0.43], [-150.0, -141.0], clusters=7.0),
             30.0: outcome([0.55, 0.57], [-145.0, -146.5], clusters=10.0),
             100.0: outcome([0.56, 0.57], [-146.0, -147.0], clusters=10.0)}
    lines = ch05.sweep_lines(sweep, 30.0)
    assert len(lines) == 2 and lines[0].startswith("λ = 0 uses 7.0 clusters, λ = 30 10.0; test accuracy: λ = 30 is "
                                                   "better than λ = 0 by 14.5 percentage points")
    assert "test ELBO: no difference between λ = 0 and λ = 30 at this budget" in lines[0]
    assert "test accuracy: no difference between λ = 100 and λ = 30" in lines[1]


def test_ranking_line_says_when_the_intervals_rank_nothing():
    from c2f.stats import ranking

    wide = {"Exact": outcome([0.80, 0.60]), "REINFORCE": outcome([0.62, 0.78]), "NVIL": outcome([0.70, 0.69])}
    line = ch05.ranking_line(ranking(wide, "test_accuracy", unit="%", scale=100), "MNIST")
    assert line.startswith("MNIST: no estimator is separated from the best mean") and "over 2 seeds" in line
    clear = {"Exact": outcome([0.90, 0.91, 0.92]), "REINFORCE": outcome([0.50, 0.52, 0.51]),
             "NVIL": outcome([0.89, 0.93, 0.90])}
    line = ch05.ranking_line(ranking(clear, "test_accuracy", unit="%", scale=100), "MNIST")
    assert line.startswith("MNIST: over 3 seeds, REINFORCE is worse than")
    assert "cannot be told apart from it at this budget" in line
    single = {"Exact": outcome([0.90]), "NVIL": outcome([0.50])}
    line = ch05.ranking_line(ranking(single, "test_accuracy", unit="%", scale=100), "MNIST")
    assert line == "MNIST: one seed, no interval: these runs do not rank the estimators (best mean: Exact)"


def test_budget_line_compares_the_two_budgets():
    line = ch05.budget_line(outcome([0.80, 0.78, 0.84]), outcome([0.57, 0.55, 0.60]), (50000, 3), (5000, 3))
    assert line.startswith("training budget: 3 epochs on 50,000 images is better than 3 epochs on 5,000 images by 23.3 percentage points")
    same = ch05.budget_line(outcome([0.60, 0.50]), outcome([0.55, 0.56]), (50000, 1), (5000, 3))
    assert "no difference between 1 epoch on 50,000 images and 3 epochs on 5,000 images" in same


def test_thesis_line_says_which_of_mean_and_worst_reach_the_thesis():
    line = ch05.thesis_line(outcome([0.80, 0.70, 0.84]), "D-VAE-ST (Exact)")
    assert line.endswith("mean 78.0 % reaches its 77.3 %; worst 70.0 % reaches its 68.5 %")
    assert line.startswith("D-VAE-ST (Exact): over 3 seeds")
    low = ch05.thesis_line(outcome([0.80, 0.60, 0.84]), "x")
    assert low.endswith("mean 74.7 % is below its 77.3 %; worst 60.0 % is below its 68.5 %")
