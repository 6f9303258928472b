"""Chapter 07 (AIR): the findings, written from the run's numbers."""

from __future__ import annotations

from c2f.evaluate import describe
from c2f.findings.targets import target_verdict
from c2f.stats import compare


def learned(outcome, threshold: float) -> str:
    """How many of a model's runs learned to count (test count accuracy at least `threshold`), as "k/n"."""
    return f"{sum(r['count_accuracy'] >= threshold for r in outcome.runs)}/{len(outcome.runs)}"


def count_lines(outcomes: dict, labels: dict[str, str], threshold: float, target: float = 0.9) -> list[str]:
    """AIR's count accuracy against the thesis and the page's target, and every other variant against AIR on
    the seeds they share (through :func:`c2f.stats.compare`). `outcomes`: an Outcome by name, AIR's "air"."""
    air = outcomes["air"]
    values = [r["count_accuracy"] for r in air.runs]
    lines = [f"AIR (exact count): count accuracy {describe(air.summary, 'count_accuracy', 1, 100, ' %')}, "
             f"{learned(air, threshold)} runs learned to count (>= {100 * threshold:.0f} %); the thesis: mean "
             f"85.1 %, worst 57.9 % over 10 runs; this page's target of a mean >= {100 * target:.0f} %: "
             f"{target_verdict(values, target)}"]
    for name, o in outcomes.items():
        if name == "air":
            continue
        shared = [air.runs[air.seeds.index(s)]["count_accuracy"] for s in o.seeds]
        c = compare([r["count_accuracy"] for r in o.runs], shared, "count_accuracy", names=(labels[name], "AIR"))
        lines.append(f"{labels[name]}: {describe(o.summary, 'count_accuracy', 1, 100, ' %')}, "
                     f"{learned(o, threshold)} runs learned to count; against AIR on the same seeds: "
                     f"{c.sentence('percentage points', 1, 100)}")
    reliable = [labels[n] for n, o in outcomes.items() if all(r["count_accuracy"] >= threshold for r in o.runs)]
    lines.append("how many: " + (f"every run of {', '.join(reliable)} learned to count" if reliable
                                 else "no variant learned to count in every run at this budget"))
    return lines


def where_line(air_summary: dict, found: float = 0.9) -> str:
    """Whether AIR's windows find the digits (recall of at least `found`) and how well they fit them."""
    return (f"where: AIR's windows find {describe(air_summary, 'recall', 1, 100, ' %')} of the digits (box IoU of "
            f"the found ones {describe(air_summary, 'box_iou', 2)}): "
            + ("where comes with the ELBO alone" if air_summary["recall"] >= found
               else "where is not solved at this budget"))


def what_line(dair_summary: dict, chance: float) -> str:
    """DAIR's count and the class accuracy of the digits it finds, beside one class for all."""
    return (f"what: DAIR counts with {describe(dair_summary, 'count_accuracy', 1, 100, ' %')} and names "
            f"{describe(dair_summary, 'class_accuracy', 1, 100, ' %')} of the digits it finds (one class for all: "
            f"{100 * chance:.1f} %)")


def three_digit_line(counting: dict[str, list[float]], labels: dict[str, str]) -> str:
    """The three-digit count accuracy of the runs that learned to count, model by model (their numbers of
    runs differ, so they are described, not ranked)."""
    return "three digits, runs that learned to count: " + (", ".join(
        f"{labels[n]} {100 * sum(v) / len(v):.1f} % ({len(v)} run{'s' if len(v) > 1 else ''})"
        for n, v in counting.items() if v) or "none")
