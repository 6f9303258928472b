"""Chapter 02's findings from small made-up prefix curves (3 groups, 8 test images, one seed): rankings by
area, the same or a different order under the NLL, the fair control, the targets and `single_steps`."""

from __future__ import annotations

import numpy as np

from c2f.experiment import Outcome
from c2f.findings import ch02

G = 3
NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.2, 0.0, -0.1, 0.1])


def outcome(name, elbo, nll=None, completed=None, noise=NOISE):
    """Prefix ELBO (and NLL) per g: a constant per g plus the same noise on every image."""
    nll = [-e - 2 for e in elbo] if nll is None else nll
    run = {}
    for key, curve in (("test_elbo_nats", elbo), ("test_nll_nats", nll), ("completed_elbo_nats", completed)):
        for g, v in enumerate(curve or [], 1):
            run[f"{key}@{g}"], run[f"{key}@{g}_per_image"] = v, list(v + noise)
    run["test_elbo_nats_per_image"] = run[f"test_elbo_nats@{G}_per_image"]
    return Outcome(name, [0], runs=[run], summary={k: v for k, v in run.items() if not isinstance(v, list)})


def results():
    return {"standard": outcome("standard", [-150, -120, -100], completed=[-140, -115, -100]),
            "single": outcome("single", [-130, -115, -105], noise=NOISE[::-1]),
            "single_steps": outcome("single_steps", [-130, -116, -110]),
            "rnn": outcome("rnn", [-125, -110, -100.5], nll=[120, 112, 99])}


def test_areas_rank_and_compare_the_first_two():
    area = ch02.areas(results(), G)
    assert set(area) == {"single", "single_steps", "rnn", ch02.FAIR}
    assert np.allclose(area["rnn"].mean(), (-125 - 110 - 100.5) / 3)
    table, line = ch02.area_ranking(area, "MNIST")
    assert list(table.index) == ["rnn", "single", ch02.FAIR, "single_steps"]  # −111.8, −116.7, −118.3, −118.7
    assert line.startswith("By area on MNIST, `rnn` comes first") and "`rnn` is better than `single` by 4.83 nats" in line


def test_no_difference_between_the_first_two_is_said():
    r = results()
    r["single"] = outcome("single", [-125, -110, -100.5], noise=NOISE[::-1])
    _, line = ch02.area_ranking(ch02.areas(r, G), "MNIST")
    assert "no difference between" in line and "at this budget" in line


def test_same_or_different_order_under_the_nll():
    r = results()
    elbo, nll = ch02.areas(r, G), ch02.areas(r, G, "test_nll_nats")
    assert ch02.FAIR not in nll
    assert ch02.same_order(elbo, nll).startswith("The NLL curve's areas order the means of the models as the ELBO's")
    r["single_steps"] = outcome("single_steps", [-130, -116, -110], nll=[100, 100, 100])
    text = ch02.same_order(elbo, ch02.areas(r, G, "test_nll_nats"))
    assert "The two orders swap 2 pair(s)" in text and "2 of the 2 swapped pair(s) are resolved by both intervals" in text
    assert "on the NLL's `single_steps` is better than `rnn` by 10.33 nats" in text
    r["single_steps"] = outcome("single_steps", [-130, -116, -110], nll=[116.5, 114, 113], noise=NOISE[::-1] * 30)
    text = ch02.same_order(elbo, ch02.areas(r, G, "test_nll_nats"))
    assert "swap 1 pair(s)" in text and "No swapped pair is resolved" in text


def test_first_is_not_said_without_an_interval_excluding_zero():
    area = ch02.areas(results(), G)
    area["single"] = area["rnn"][:, ::-1] + 0.01  # the best mean by a hair, the same images shuffled
    _, line = ch02.area_ranking(area, "MNIST")
    assert "comes first" not in line and "has the best mean" in line and "are not ranked" in line


def test_fair_control_best_first_group_targets_and_steps():
    r = results()
    text = ch02.fair_control(r, -200.0, G)
    assert "-140.00 nats at g = 1" in text and "the fair control is better than the prefix decoding by 10.00 nats" in text
    assert "above the no-latent line at 3 of 3" in text
    assert ch02.best_first_group(r).startswith("With one group, `rnn` has the highest ELBO (-125.00 nats)")
    text = ch02.target("rnn", r, G, [5.0, 1.0, 0.05])
    assert text.startswith("`rnn` meets the targets: above single at 3 of 3 prefixes")
    assert "1 of its 3 groups are switched off" in text
    r["single"] = outcome("single", [-125, -110, -100.5], noise=NOISE[::-1])  # the same curve: no difference
    assert "cannot be said to meet or miss" in ch02.target("rnn", r, G, [5.0, 1.0, 0.05])
    r["single"] = outcome("single", [-125, -105, -100.5], noise=NOISE[::-1])  # better at g = 2
    assert ch02.target("rnn", r, G, [5.0, 1.0, 0.05]).startswith("`rnn` misses the targets: above single at 0 of 3")
    text = ch02.steps_against_single(r, G, nll=True)
    assert "ELBO at g = 3: `single` is better than `single_steps` by 9.50 nats" in text and text.count("NLL at g =") == 2
    assert "the ELBO's improvement from g = 1 to g = 3: `single` is better than `single_steps` by 4.50 nats" in text
    assert "the NLL's improvement from g = 1 to g = 3: `single` is better than `single_steps` by 4.50 nats" in text
    assert "neither is what one group explains alone" in ch02.fair_control(r, -200.0, G)


def test_prefix_verdicts_count_each_side():
    r = results()
    text = ch02.prefix_verdicts(r, "rnn", "single", G)
    assert text.startswith("on the ELBO of each prefix, `rnn` is better than `single` at 3, `single` better at 0")
    r["single"] = outcome("single", [-125, -105, -100.5], noise=NOISE[::-1])
    assert "`single` at 0, `single` better at 1, no difference at 2 of 3" in ch02.prefix_verdicts(r, "rnn", "single", G)
