"""Chapter 07's findings: the sentences its findings cell prints, written from small fake numbers."""

from __future__ import annotations

from c2f.evaluate import summarise
from c2f.experiment import Outcome
from c2f.findings import ch07

LABELS = {"air": "AIR", "air_difference": "Difference-AIR", "air_nvil": "AIR, NVIL count"}


def outcome(name: str, seeds: list[int], accuracy: list[float], **metrics) -> Outcome:
    runs = [{"count_accuracy": a, **{k: v[i] for k, v in metrics.items()}} for i, a in enumerate(accuracy)]
    return Outcome(name, seeds, runs=runs, summary=summarise(runs))


def test_variants_are_compared_with_air_on_the_seeds_they_share():
    lines = ch07.count_lines({"air": outcome("air", [0, 1, 2], [0.40, 0.35, 0.50]),
                              "air_difference": outcome("air_difference", [0, 1, 2], [0.98, 0.97, 0.99]),
                              "air_nvil": outcome("air_nvil", [0], [0.3])}, LABELS, 0.9)
    assert lines[0].endswith("target of a mean >= 90 %: missed") and "0/3 runs learned" in lines[0]
    assert "3/3 runs learned to count" in lines[1] and "Difference-AIR is better by 56.3 percentage points" in lines[1]
    assert "cannot tell them apart" in lines[2]
    assert "AIR, NVIL count − AIR = −10.0 percentage points on one seed" in lines[2]
    assert lines[3] == "how many: every run of Difference-AIR learned to count"


def test_no_difference_and_an_undecided_target():
    lines = ch07.count_lines({"air": outcome("air", [0, 1, 2], [0.95, 0.60, 0.97]),
                              "air_difference": outcome("air_difference", [0, 1, 2], [0.96, 0.62, 0.95])},
                             LABELS, 0.9)
    assert lines[0].endswith("cannot tell at this budget")
    assert "no difference between Difference-AIR and AIR at this budget" in lines[1]
    assert lines[2] == "how many: no variant learned to count in every run at this budget"


def test_descriptions():
    air = outcome("air", [0, 1], [0.4, 0.5], recall=[0.92, 0.94], box_iou=[0.6, 0.7]).summary
    assert ch07.where_line(air).endswith("where comes with the ELBO alone")
    assert ch07.where_line({**air, "recall": 0.5}).endswith("where is not solved at this budget")
    dair = outcome("dair", [0], [0.976], class_accuracy=[0.395]).summary
    assert ch07.what_line(dair, 0.121) == ("what: DAIR counts with 97.6 % and names 39.5 % of the digits it finds "
                                           "(one class for all: 12.1 %)")
    assert ch07.three_digit_line({"air": [], "air_difference": [0.9, 0.92]}, LABELS) == (
        "three digits, runs that learned to count: Difference-AIR 91.0 % (2 runs)")
    assert ch07.three_digit_line({"air": []}, LABELS).endswith("none")
