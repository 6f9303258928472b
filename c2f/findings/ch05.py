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


THESIS_TEN_CLASS = {"mean": 0.773, "worst": 0.685}  # the thesis's D-VAE-ST (RELAX) on MNIST: 10 runs, 150 epochs


def budget_line(long, short, long_budget: tuple[int, int], short_budget: tuple[int, int]) -> str:
    """The D-VAE-ST trained with the page's budget against the same model trained with a shorter one (`long`,
    `short`: Outcomes with the same seeds; each budget as (training images, epochs)), on the test accuracy
    through :func:`c2f.stats.compare`."""
    names = tuple(f"{e} epoch{'s' * (e != 1)} on {n:,} images" for n, e in (long_budget, short_budget))
    return "training budget: " + compare(long, short, "test_accuracy", names=names).sentence("percentage points", 1, 100)


def thesis_line(outcome, label: str) -> str:
    """The mean and the worst seed's test accuracy of `outcome` (an Outcome) against the thesis's ten-run mean
    and worst on MNIST (:data:`THESIS_TEN_CLASS`), each said to reach it or to stay below it."""
    acc = np.array([r["test_accuracy"] for r in outcome.runs])
    parts = []
    for what, value in (("mean", acc.mean()), ("worst", acc.min())):
        ref = THESIS_TEN_CLASS[what]
        parts.append(f"{what} {100 * value:.1f} % {'reaches' if value >= ref else 'is below'} its {100 * ref:.1f} %")
    return (f"{label}: over {len(acc)} seed{'s' * (len(acc) != 1)}, against the thesis's ten runs (RELAX, 150 epochs, "
            f"accuracy on the training split): " + "; ".join(parts))
