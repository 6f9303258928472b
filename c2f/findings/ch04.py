"""Chapter 04 (hierarchical and ladder VAEs): what each layer carries and how the models compare, in sentences.

Every comparison of two models goes through :func:`c2f.stats.compare` (paired over seeds, and over the test
images with their per-image values); the rest describes one model's numbers.
"""

from __future__ import annotations

import numpy as np

from c2f.evaluate import describe
from c2f.findings.targets import target_verdict
from c2f.stats import compare, interval


def units(summary: dict, key: str, n_seeds: int, size: int | None = None) -> str:
    """A count of units (out of `size`): an integer for one seed, mean ± std over several."""
    text = describe(summary, key, 0 if n_seeds == 1 else 1)
    return text if size is None else f"{text}/{size}" if n_seeds == 1 else f"{text} of {size}"


def kl_course(history: dict, l: int, warmup_epochs: float) -> tuple[float, float, float, float, float]:
    """Peak (value, epoch), value at the end of warm-up, final value and change over the last epoch of the
    KL of layer l, from the training curve (running means) and the per-epoch means."""
    steps = np.asarray(history["steps"]["step"], dtype=float)
    ep = steps / (steps[-1] / history["epochs"]["epoch"][-1])
    kl = np.asarray(history["steps"][f"kl_{l}"])
    per_epoch = history["epochs"][f"kl_{l}"]
    at_warm = kl[ep <= max(warmup_epochs, ep[0])][-1]
    last = per_epoch[-1] - per_epoch[-2] if len(per_epoch) > 1 else float("nan")
    return float(kl.max()), float(ep[kl.argmax()]), float(at_warm), float(kl[-1]), float(last)


def course_lines(courses: dict[str, list[tuple]], warmup_epochs: float) -> list[str]:
    """One line per model with the KL course of each layer (`courses`: name -> :func:`kl_course` per layer),
    then how many layers peak before the KL weight reaches one half and which still fall."""
    lines, falling = [], []
    for name, layers in courses.items():
        lines.append(f"{name}: " + "; ".join(
            f"z{l} peak {peak:.1f} at epoch {when:.1f}, {at_warm:.1f} after warm-up, {final:.1f} at the end "
            f"({last:+.2f} over the last epoch)" for l, (peak, when, at_warm, final, last) in enumerate(layers, 1)))
        falling += [f"{name} layer {l}" for l, c in enumerate(layers, 1) if c[4] < -0.1]
    early = sum(c[1] <= warmup_epochs / 2 for layers in courses.values() for c in layers)
    total = sum(len(layers) for layers in courses.values())
    lines.append(f"{early} of {total} layers have their largest KL before the KL weight reaches one half (epoch "
                 f"{warmup_epochs / 2:g}); layers whose KL still fell by more than 0.1 nats over the last epoch: "
                 + (", ".join(falling) or "none"))
    return lines


def layer_lines(reports: dict[str, dict], n_seeds: int) -> list[str]:
    """Per model: the share of its KL in each layer, its unused layers (no unit above 0.1 nats) and its
    active units by both criteria."""
    lines = []
    for name, r in reports.items():
        layers = [l for l in range(1, 99) if f"kl_layer_{l}" in r]
        total = sum(r[f"kl_layer_{l}"] for l in layers)
        unused = [l for l in layers if r[f"kl_active_units_layer_{l}"] == 0]
        share = ", ".join(f"{100 * r[f'kl_layer_{l}'] / total:.0f}%" for l in layers)
        lines.append(f"{name:22s} KL share of layers 1..{len(layers)}: {share}; "
                     + (f"unused layer(s): {unused}" if unused else "every layer used")
                     + f"; active units {units(r, 'kl_active_units', n_seeds)} by KL-AU, "
                       f"{units(r, 'active_units', n_seeds)} by AU")
    return lines


def used_target(outcome, layers: int, n_seeds: int) -> str:
    """The target "units with KL > 0.1 nats in every layer" of one model, met only if met in every seed."""
    ok = all(x[f"kl_active_units_layer_{l}"] > 0 for x in outcome.runs for l in range(1, layers + 1))
    return (f"target, {outcome.name}: units with KL > 0.1 nats in every layer"
            + (f" of every one of the {n_seeds} seeds" if n_seeds > 1 else "") + f": {'met' if ok else 'NOT met'}")


def against(outcomes: dict, reference: str, names, metric: str = "test_nll_nats") -> list[str]:
    """Every model in `names` against `reference` on `metric`, through :func:`c2f.stats.compare`."""
    return [compare(outcomes[n], outcomes[reference], metric, names=(n, reference)).sentence(digits=2)
            for n in names if n != reference]


def target(outcome, target_nats: float, conditions: str) -> str:
    """A model's test NLL against its full-profile target: met when the 95 % interval (over seeds, and test
    images with per-image values) lies below it, missed when it lies above, else undecided."""
    nll = np.stack([r["test_nll_nats_per_image"] for r in outcome.runs])
    i, verdict = interval(nll), target_verdict(nll, target_nats, higher=False)
    span = "" if i.low is None else f" (95 % CI {i.low:.2f} to {i.high:.2f} over {i.over})"
    return (f"{outcome.name} test NLL {i.mean:.2f} nats{span} {conditions}; full-profile target for the mean "
            f"{target_nats:g} nats: {verdict}")


def ablation_lines(outcomes: dict, reports: dict, ablations, n_seeds: int) -> list[str]:
    """Each LVAE ablation against the full recipe: train and test ELBO and NLL through
    :func:`c2f.stats.compare`, the train–test gaps and the units above 0.1 nats."""
    base, lines = reports["lvae"], []
    for a in ablations:
        name, r = f"lvae_{a}", reports[f"lvae_{a}"]
        diffs = [f"{label}: " + compare(outcomes[name], outcomes["lvae"], metric, names=(name, "lvae")).sentence(
            digits=2) for label, metric in (("train ELBO", "train_elbo_nats"), ("test ELBO", "test_elbo_nats"),
                                            ("NLL", "test_nll_nats"))]
        gap, base_gap = (x["train_elbo_nats"] - x["test_elbo_nats"] for x in (r, base))
        lines.append(f"LVAE {a} against the full recipe: " + "; ".join(diffs) + f"; train–test gap {gap:.2f} "
                     f"against {base_gap:.2f} nats; units with KL > 0.1 nats {units(r, 'kl_active_units', n_seeds)} "
                     f"against {units(base, 'kl_active_units', n_seeds)}")
    return lines


def unit_criteria(reports: dict, names, n_seeds: int) -> str:
    """Where the covariance criterion (AU) and the KL criterion (KL-AU) disagree: both counts per model."""
    return "Units counted by AU against KL-AU: " + "; ".join(
        f"{n} {units(reports[n], 'active_units', n_seeds)} against {units(reports[n], 'kl_active_units', n_seeds)}"
        for n in names if n in reports) + "."


def answers(outcomes: dict, reports: dict, courses: dict, n_seeds: int) -> list[str]:
    """The numbers the answers to the chapter's questions rest on: the Markov HVAE against the HVAE, the
    SVAE's units per step, each model's thinnest layer (its KL, units and KL course) and the two counts of
    active units."""
    lines = []
    if {"markov_hvae", "hvae"} <= outcomes.keys():
        lines.append("**Markov HVAE against the HVAE** on the test NLL: "
                     + against(outcomes, "hvae", ["markov_hvae"])[0] + f"; it keeps "
                     f"{units(reports['markov_hvae'], 'kl_active_units', n_seeds)} units above 0.1 nats.")
    if "svae" in reports:
        r = reports["svae"]
        lines.append("**SVAE**, units above 0.1 nats at steps 1..T: " + ", ".join(
            units(r, f"kl_active_units_layer_{l}", n_seeds) for l in range(1, 99) if f"kl_layer_{l}" in r)
                     + "; KL per step " + ", ".join(f"{r[f'kl_layer_{l}']:.1f}" for l in range(1, 99)
                                                    if f"kl_layer_{l}" in r) + " nats.")
    for name, layers in courses.items():
        r = reports[name]
        l = min(range(1, len(layers) + 1), key=lambda l: r[f"kl_layer_{l}"])
        peak, when, at_warm, final, last = layers[l - 1]
        lines.append(f"**{name}'s thinnest layer** is z{l}: {r[f'kl_layer_{l}']:.1f} nats on the test images from "
                     f"{units(r, f'kl_active_units_layer_{l}', n_seeds)} units, after a peak of {peak:.1f} nats at "
                     f"epoch {when:.1f} and {at_warm:.1f} at the end of warm-up ({last:+.2f} over the last epoch).")
    lines.append(unit_criteria(reports, list(reports), n_seeds))
    return lines


def redraw_halves(per_seed: dict[str, list[dict]], layers: int) -> str:
    """Per model, which layers' redraw keeps the class of most test images and which changes it for most:
    a layer is put on one side only when every seed puts it there (`per_seed`: name -> one dict of
    ``class_change_layer_l`` per seed)."""
    parts = []
    for name, runs in per_seed.items():
        sides = {"keeps": [], "changes": [], "differs between seeds": []}
        for l in range(1, layers + 1):
            rates = [r[f"class_change_layer_{l}"] for r in runs]
            side = "keeps" if max(rates) < 0.5 else "changes" if min(rates) > 0.5 else "differs between seeds"
            sides[side].append(f"z{l}")
        parts.append(f"{name}: " + "; ".join(
            (f"redrawing {', '.join(v)} {k} the class of most test images" if k != "differs between seeds"
             else f"{', '.join(v)} on either side of one half depending on the seed" if len(runs) > 1
             else f"{', '.join(v)} at exactly one half") for k, v in sides.items() if v))
    seeds = len(next(iter(per_seed.values()), []))
    return (f"More often than not, over {'every one of the ' + str(seeds) + ' seeds' if seeds > 1 else 'one seed'}: "
            + " | ".join(parts) + ".")
