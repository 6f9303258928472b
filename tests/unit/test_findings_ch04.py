"""Chapter 04's findings from small made-up numbers: comparisons with and without a difference, the target's
verdicts, the ablation lines, the KL course of a layer and the lines that describe one model."""

from __future__ import annotations

import numpy as np

from c2f.experiment import Outcome
from c2f.findings import ch04

NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.1])


def outcome(name, nll, elbo=None, train=None, **scalars):
    elbo = -nll - 2 if elbo is None else elbo
    train = elbo + 1 if train is None else train
    run = {"test_nll_nats": float(np.mean(nll)), "test_nll_nats_per_image": list(nll),
           "test_elbo_nats": float(np.mean(elbo)), "test_elbo_nats_per_image": list(elbo),
           "train_elbo_nats": float(np.mean(train)), "train_elbo_nats_per_image": list(train), **scalars}
    return Outcome(name, [0], runs=[run], summary={k: v for k, v in run.items() if not isinstance(v, list)})


def test_against_the_flat_vae_ranks_or_says_no_difference():
    outcomes = {"vae": outcome("vae", 110 + NOISE), "lvae": outcome("lvae", 106 + NOISE[::-1]),
                "hvae": outcome("hvae", 110 + NOISE[::-1])}
    lines = ch04.against(outcomes, "vae", ["vae", "lvae", "hvae"])
    assert len(lines) == 2 and lines[0].startswith("lvae is better than vae by 4.00 nats")
    assert lines[1].startswith("no difference between hvae and vae at this budget")


def test_target_verdicts():
    assert ch04.target(outcome("lvae", 80 + NOISE), 81.5, "(here)").endswith(": met")
    assert ch04.target(outcome("lvae", 90 + NOISE), 81.5, "(here)").endswith("missed")
    assert ch04.target(outcome("lvae", 81.5 + NOISE), 81.5, "(here)").endswith("cannot tell at this budget")


def test_ablation_lines():
    outcomes = {"lvae": outcome("lvae", 100 + NOISE, kl_active_units=40),
                "lvae_neither": outcome("lvae_neither", 130 + NOISE[::-1], kl_active_units=5)}
    reports = {k: o.summary for k, o in outcomes.items()}
    (line,) = ch04.ablation_lines(outcomes, reports, ["neither"], 1)
    assert "NLL: lvae is better than lvae_neither by 30.00 nats" in line and "train ELBO: lvae is better" in line
    assert "train–test gap 1.00 against 1.00 nats" in line and "units with KL > 0.1 nats 5 against 40" in line


def test_kl_course_and_layer_lines():
    history = {"steps": {"step": [1, 2, 3, 4], "kl_1": [5.0, 9.0, 4.0, 3.0]},
               "epochs": {"epoch": [1, 2], "kl_1": [7.0, 3.5]}}
    peak, when, at_warm, final, last = ch04.kl_course(history, 1, warmup_epochs=1.0)
    assert (peak, when, at_warm, final, last) == (9.0, 1.0, 9.0, 3.0, -3.5)
    lines = ch04.course_lines({"lvae": [(peak, when, at_warm, final, last)]}, 2.0)
    assert lines[-1].startswith("1 of 1 layers have their largest KL before") and "lvae layer 1" in lines[-1]
    report = {"kl_layer_1": 30.0, "kl_layer_2": 10.0, "kl_active_units_layer_1": 5, "kl_active_units_layer_2": 0,
              "kl_active_units": 5, "active_units": 20}
    (line,) = ch04.layer_lines({"svae": report}, 1)
    assert "75%, 25%" in line and "unused layer(s): [2]" in line and "5 by KL-AU, 20 by AU" in line
    assert ch04.used_target(Outcome("lvae", [0], runs=[report]), 2, 1).endswith("NOT met")


def test_answers_compare_markov_with_hvae_and_describe_the_thinnest_layer():
    layers = {"kl_layer_1": 20.0, "kl_layer_2": 1.9, "kl_active_units_layer_1": 30, "kl_active_units_layer_2": 2,
              "kl_active_units": 32, "active_units": 45}
    outcomes = {"hvae": outcome("hvae", 108 + NOISE, **layers), "markov_hvae": outcome("markov_hvae", 108 + NOISE[::-1],
                                                                                       **layers)}
    reports = {k: o.summary for k, o in outcomes.items()}
    lines = ch04.answers(outcomes, reports, {"hvae": [(25.6, 1.0, 15.0, 20.0, 0.1), (10.6, 1.0, 3.2, 1.9, -0.02)]}, 1)
    assert "no difference between markov_hvae and hvae at this budget" in lines[0]
    assert "**hvae's thinnest layer** is z2: 1.9 nats on the test images from 2 units, after a peak of 10.6" in lines[1]
    assert lines[-1].startswith("Units counted by AU against KL-AU: hvae 45 against 32")


def test_redraw_halves_sides_need_every_seed():
    runs = [{"class_change_layer_1": 0.2, "class_change_layer_2": 0.52, "class_change_layer_3": 0.9},
            {"class_change_layer_1": 0.3, "class_change_layer_2": 0.45, "class_change_layer_3": 0.8}]
    line = ch04.redraw_halves({"markov_hvae": runs}, 3)
    assert line.startswith("More often than not, over every one of the 2 seeds: markov_hvae: ")
    assert "redrawing z1 keeps the class" in line and "redrawing z3 changes the class" in line
    assert "z2 on either side of one half depending on the seed" in line
    assert "redrawing z2 changes" not in line
    one = ch04.redraw_halves({"lvae": runs[:1]}, 3)
    assert "over one seed" in one and "redrawing z2, z3 changes the class" in one
