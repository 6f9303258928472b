"""Chapter 07's findings: the sentences its findings cell prints, written from small fake numbers."""

from __future__ import annotations

from c2f.evaluate import summarise
from c2f.experiment import Outcome
from c2f.findings import ch07

LABELS = {"air": "AIR", "air_difference": "Difference-AIR", "air_nvil": "AIR, NVIL count",
          "air_thesis_pres_init": "AIR, logit 2", "air_gaussian": "AIR, Gaussian, logit 2"}
PAIRS = [("air_difference", "air"), ("air_nvil", "air")]


def outcome(name: str, seeds: list[int], accuracy: list[float], **metrics) -> Outcome:
    runs = [{"count_accuracy": a, **{k: v[i] for k, v in metrics.items()}} for i, a in enumerate(accuracy)]
    return Outcome(name, seeds, runs=runs, summary=summarise(runs))


def test_variants_are_compared_with_air_on_the_seeds_they_share():
    lines = ch07.count_lines({"air": outcome("air", [0, 1, 2], [0.40, 0.35, 0.50]),
                              "air_difference": outcome("air_difference", [0, 1, 2], [0.98, 0.97, 0.99]),
                              "air_nvil": outcome("air_nvil", [0], [0.3])}, LABELS, 0.9, PAIRS)
    assert lines[0].endswith("no run below 85 %: missed, and a run is below 85 % (35.0 %)")
    assert "0/3 runs learned" in lines[0]
    assert "3/3 runs learned to count" in lines[1] and "Difference-AIR is better than AIR by 56.3 percentage points" in lines[1]
    assert "cannot tell them apart" in lines[2]
    assert "AIR, NVIL count − AIR = −10.0 percentage points on one seed" in lines[2]
    assert lines[3] == "how many: every run of Difference-AIR learned to count"


def test_no_difference_and_an_undecided_target():
    lines = ch07.count_lines({"air": outcome("air", [0, 1, 2], [0.95, 0.60, 0.97]),
                              "air_difference": outcome("air_difference", [0, 1, 2], [0.96, 0.62, 0.95])},
                             LABELS, 0.9, PAIRS)
    assert lines[0].endswith("cannot tell at this budget, and a run is below 85 % (60.0 %)")
    assert "no difference between Difference-AIR and AIR at this budget" in lines[1]
    assert lines[2] == "how many: no variant learned to count in every run at this budget"


def test_descriptions():
    air = outcome("air", [0, 1], [0.4, 0.5], recall=[0.92, 0.94], precision=[0.95, 0.97], f1=[0.93, 0.95],
                  box_iou=[0.6, 0.7]).summary
    assert "find 93.0 ± 1.4 % of the digits, 96.0 ± 1.4 % of its windows sit on a digit (F1 0.94 ± 0.01" in (
        ch07.where_line(air))
    assert ch07.where_line(air).endswith("few are spare, learned from the ELBO alone")
    assert ch07.where_line({**air, "precision": 0.49}).endswith("many windows match no digit")
    assert ch07.where_line({**air, "recall": 0.5}).endswith("where is not solved at this budget")
    dair = outcome("dair", [0], [0.976], class_accuracy=[0.395]).summary
    assert ch07.what_line(dair, 0.121) == ("what: DAIR counts with 97.6 % and names 39.5 % of the digits it finds "
                                           "(one class for all: 12.1 %)")
    three = {"air": outcome("air", [0, 1], [0.99, 0.98], **{"three/count_accuracy": [0.3, 0.2],
                                                             "three/over_count": [0.0, 0.1],
                                                             "three/under_count": [0.7, 0.7]})}
    assert ch07.three_digit_line(three, LABELS, 4) == (
        "three digits, 4 inference steps: AIR 25.0 ± 7.1 % (worst 20.0 %) right, 5.0 % over-counted, 70.0 % "
        "under-counted")


def test_pairs_compare_the_ablations_they_name_and_skip_absent_ones():
    runs = {"air": outcome("air", [0, 1, 2], [0.99, 0.98, 0.99]),
            "air_thesis_pres_init": outcome("air_thesis_pres_init", [0, 1, 2], [0.32, 0.33, 0.58]),
            "air_gaussian": outcome("air_gaussian", [1, 2, 3], [0.99, 0.995, 0.99])}
    pairs = [("air", "air_thesis_pres_init"), ("air_gaussian", "air_thesis_pres_init"), ("air_nvil", "air")]
    lines = ch07.count_lines(runs, LABELS, 0.9, pairs)
    assert len(lines) == 4  # AIR, two pairs (NVIL did not run), how many
    assert lines[1].startswith("AIR: 98.7") and "against AIR, logit 2 on the same seeds: AIR is better than AIR, logit 2 by" in lines[1]
    assert "over 2 seeds" in lines[2], "only seeds 1 and 2 are shared"
    assert lines[3] == "how many: every run of AIR, AIR, Gaussian, logit 2 learned to count"
    assert ch07.paired(runs["air_gaussian"], runs["air_thesis_pres_init"]) == ([0.99, 0.995], [0.33, 0.58])


def test_mechanism_and_protocol_lines():
    def o(acc, ink):
        return outcome("m", list(range(len(acc))), acc, first_object_ink=ink)

    split = {"a": o([0.99, 0.98], [0.98, 0.96]), "b": o([0.33, 0.32], [0.50, 0.56])}
    assert ch07.mechanism_line(split, 0.9) == (
        "mechanism: on one-digit scenes the first object draws 97 % (2 runs) of the ink in the runs that count and "
        "53 % (2 runs) in the runs that do not: the runs that over-count split each digit among their objects")
    close = {"a": o([0.99], [0.9]), "b": o([0.33], [0.8])}
    assert ch07.mechanism_line(close, 0.9).endswith("does not separate them")
    assert ch07.mechanism_line({"a": o([0.99], [0.97])}, 0.9).startswith("mechanism: every run learned to count")
    s = outcome("air", [0, 1], [0.99, 0.97], **{"train/sampled_count_accuracy": [0.98, 0.96]}).summary
    assert ch07.protocol_line(s, "AIR") == (
        "AIR, the thesis's protocol (training scenes, a sampled count): 97.0 ± 1.4 % (worst 96.0 %); this page's "
        "(test scenes, the most probable count): 98.0 ± 1.4 % (worst 97.0 %)")


def test_prices_of_the_presence_start_and_of_a_missed_pixel():
    line = ch07.prices_line(3, 0.0, 2.0, 0.2)
    assert "q(n = 3) = 0.125 with presence logit 0 (this chapter), 0.683 with logit 2 (the thesis)" in line  # 0.8808³
    assert line.endswith("costs 9.2 nats under the clamped Bernoulli, 2.5 under the Gaussian with σ² = 0.2")
