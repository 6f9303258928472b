"""Chapter 05 (discrete latents): the findings, written from the run's numbers."""

from __future__ import annotations

import numpy as np

from c2f.stats import compare


def toy_lines(toy: dict[str, dict], names: dict[str, str], optimum: float, uniform: float, steps: int) -> list[str]:
    """Per estimator of the toy problem: the share of the gap between the uniform start and the optimum still
    open at the last step (mean over runs), and its final log-variance against REINFORCE's, through
    :func:`c2f.stats.compare` over the runs (run i of every estimator has the same seed)."""
    lines = []
    for name, r in toy.items():
        left = (r["loss"][:, -1].mean() - optimum) / (uniform - optimum)
        line = f"{names[name]:10s} gap to the optimum left after {steps} steps: {100 * left:5.1f} %"
        if name not in ("exact", "reinforce") and "reinforce" in toy:
            c = compare(r["log_var"][:, -1], toy["reinforce"]["log_var"][:, -1], "final log-variance",
                        names=(names[name], names["reinforce"]), higher=False)
            line += f"; final log-variance: {c.sentence('', 2)}"
            if c.better == names[name]:
                line += f", a variance {np.exp(-c.difference.mean):.3g}× below REINFORCE's"
        lines.append(line)
    return lines


def against(outcomes: dict, reference: str, metric: str = "test_accuracy") -> list[str]:
    """Every model of `outcomes` (an Outcome by label, all with the same seeds) against the `reference` one on
    `metric` (an accuracy, in percentage points), through :func:`c2f.stats.compare`."""
    return [compare(o, outcomes[reference], metric, names=(label, reference)).sentence("percentage points", 1, 100)
            for label, o in outcomes.items() if label != reference]


def sweep_lines(sweep: dict[float, object], used: float) -> list[str]:
    """Every weight λ of the marginal-KL sweep against the weight used everywhere else, on the test accuracy
    and the test ELBO, with the clusters each one uses (`sweep`: an Outcome by weight, all with the same
    seeds)."""
    base, lines = sweep[used], []
    for w, o in sweep.items():
        if w == used:
            continue
        names = (f"λ = {w:g}", f"λ = {used:g}")
        accuracy = compare(o, base, "test_accuracy", names=names).sentence("percentage points", 1, 100)
        elbo = compare(o, base, "test_elbo_nats", names=names).sentence("nats", 1)
        lines.append(f"λ = {w:g} uses {o.summary['clusters_used']:.1f} clusters, λ = {used:g} "
                     f"{base.summary['clusters_used']:.1f}; test accuracy: {accuracy}; test ELBO: {elbo}")
    return lines


def ranking_line(table, label: str) -> str:
    """What a :func:`c2f.stats.ranking` table of estimators allows one to say: which are worse than the best
    by their 95 % interval, and that the others cannot be ranked at this budget (all of them, with few seeds)."""
    best = table.index[0]
    worse = [n for n in table.index[1:] if table.loc[n, "verdict"].startswith("worse than")]
    tied = [n for n in table.index[1:] if n not in worse]
    over = table.index.name.removeprefix("over ")
    if over == "one seed":
        return f"{label}: one seed, no interval: these runs do not rank the estimators (best mean: {best})"
    if not worse:
        return (f"{label}: no estimator is separated from the best mean ({best}) by its interval over {over}: "
                "these runs do not rank the estimators")
    return (f"{label}: over {over}, {', '.join(worse)} {'is' if len(worse) == 1 else 'are'} worse than {best}"
            + (f"; {', '.join(tied)} cannot be told apart from it at this budget" if tied else ""))
