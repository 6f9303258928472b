"""Chapter 02 (progressive coarse-to-fine VAEs): rankings by prefix curve and the targets, in sentences.

A model's *area* is the mean of its prefix curve over g = 1..G, computed per test image so that two models
are compared through :func:`c2f.stats.compare` over the seeds and the test images. The Standard VAE's area is
that of its fair control (groups ranked by KL, the rest drawn from the prior), named :data:`FAIR`.
"""

from __future__ import annotations

import numpy as np

from c2f.stats import compare, interval, ranking

FAIR = "standard (rest from prior)"


def areas(results: dict, groups: int, metric: str = "test_elbo_nats") -> dict[str, np.ndarray]:
    """Per model, the area of its prefix curve of `metric` per seed and test image [S, N]; the Standard VAE
    enters as its fair control (ELBO only) and not by prefix decoding. `results`: name -> Outcome whose runs
    keep ``<metric>@g_per_image`` (and, for the Standard VAE, ``completed_elbo_nats@g_per_image``)."""
    def area(outcome, key):
        return np.stack([np.mean([r[f"{key}@{g}_per_image"] for g in range(1, groups + 1)], 0)
                         for r in outcome.runs])
    out = {n: area(o, metric) for n, o in results.items() if n != "standard"}
    if "standard" in results and metric == "test_elbo_nats":
        out[FAIR] = area(results["standard"], "completed_elbo_nats")
    return out


def order(values: dict[str, np.ndarray], higher: bool = True) -> list[str]:
    """The models by their mean, best first."""
    return sorted(values, key=lambda n: -values[n].mean() if higher else values[n].mean())


def area_ranking(values: dict[str, np.ndarray], label: str, higher: bool = True):
    """The ranking table by area (:func:`c2f.stats.ranking`, with intervals) and a sentence: the first model
    against the second through :func:`c2f.stats.compare`."""
    table = ranking(values, "area", higher=higher, digits=2)
    first, second = order(values, higher)[:2]
    c = compare(values[first], values[second], "area", names=(f"`{first}`", f"`{second}`"), higher=higher)
    return table, (f"By area on {label}, `{first}` comes first ({values[first].mean():.2f} nats) and `{second}` "
                   f"second: {c.sentence(digits=2)}.")


def same_order(elbo: dict[str, np.ndarray], nll: dict[str, np.ndarray]) -> str:
    """Whether the areas under the ELBO curve and under the NLL curve order the models the same way (the
    models with both curves; the order of the means, each pair's interval is in the tables)."""
    names = [n for n in elbo if n in nll]
    by_elbo = order({n: elbo[n] for n in names})
    by_nll = order({n: nll[n] for n in names}, higher=False)
    if by_elbo == by_nll:
        return f"The NLL curve's areas order the models as the ELBO's do ({', '.join(by_elbo)})."
    return (f"The NLL curve's areas order the models {', '.join(by_nll)}, the ELBO's {', '.join(by_elbo)}: the two "
            "curves do not give the same order, so part of the ELBO's order is in the posteriors' tightness.")


def fair_control(results: dict, no_latents: float, groups: int) -> str:
    """The Standard VAE's fair control at g = 1 (its highest-KL group inferred, every other group drawn from
    the prior) against decoding its first group alone, through :func:`c2f.stats.compare`."""
    s = results["standard"].summary
    fair = [s[f"completed_elbo_nats@{g}"] for g in range(1, groups + 1)]
    per_image = [np.stack([r[f"{k}@1_per_image"] for r in results["standard"].runs])
                 for k in ("completed_elbo_nats", "test_elbo_nats")]
    c = compare(*per_image, "elbo", names=("the fair control", "the prefix decoding"), higher=True)
    return (f"The fair Standard control, with its groups ranked by KL, scores {fair[0]:.2f} nats at g = 1 (its "
            f"highest-KL group inferred and the other {groups - 1} drawn from the prior; the prefix decoding of "
            f"the first group alone gave {s['test_elbo_nats@1']:.2f}, no latents {no_latents:.2f}) and is above "
            f"the no-latent line at {sum(v > no_latents for v in fair)} of {groups} values of g. At g = 1, "
            f"{c.sentence(digits=2)}.")


def best_first_group(results: dict) -> str:
    """Which model's first group explains most (the ELBO at g = 1), the best against the runner-up."""
    names = sorted((n for n in results if n != "standard"), key=lambda n: -results[n].summary["test_elbo_nats@1"])
    c = compare(results[names[0]], results[names[1]], "test_elbo_nats@1", names=(f"`{names[0]}`", f"`{names[1]}`"))
    return (f"With one group, `{names[0]}` has the highest ELBO ({results[names[0]].summary['test_elbo_nats@1']:.2f} "
            f"nats); against the next, {c.sentence(digits=2)}.")


def target(name: str, results: dict, groups: int, kls: list[float]) -> str:
    """The chapter's target for a recurrent model: a prefix curve above Single's and Multiple's at every g
    (each g through :func:`c2f.stats.compare`), and a full ELBO within 1 nat of the Standard VAE's (the
    interval of the gap below 1). Met when every interval says so, missed when one says the opposite (a prefix
    where the other model is better, or a gap above 1 nat), else undecided."""
    others = [n for n in ("single", "multiple_combined") if n in results]
    verdicts = {o: [compare(results[name], results[o], f"test_elbo_nats@{g}").verdict for g in range(1, groups + 1)]
                for o in others}
    gap = interval(np.stack([r["test_elbo_nats_per_image"] for r in results["standard"].runs])
                   - np.stack([r["test_elbo_nats_per_image"] for r in results[name].runs]))
    within = None if gap.low is None else True if gap.high <= 1.0 else False if gap.low > 1.0 else None
    wins = {o: v.count("A better") for o, v in verdicts.items()}
    missed = within is False or any("B better" in v for v in verdicts.values())
    met = within is True and all(w == groups for w in wins.values())
    state = "meets" if met else "misses" if missed else "cannot be said to meet or miss"
    span = "" if gap.low is None else f" (95 % CI {gap.low:.2f} to {gap.high:.2f} over {gap.over})"
    return (f"`{name}` {state} the targets: " + "; ".join(
        f"above {o} at {w} of {groups} prefixes, no difference at {v.count('no difference at this budget')}"
        for (o, v), w in zip(verdicts.items(), wins.values()))
        + f"; the Standard VAE's full ELBO minus its own is {gap.mean:.2f} nats{span}, and "
          f"{sum(k < 0.1 for k in kls)} of its {groups} groups are switched off (KL below 0.1 nat)")


def steps_against_single(results: dict, groups: int, nll: bool) -> str:
    """`single_steps` against `single` at the first and the last prefix, on the ELBO (and the NLL when
    scored), through :func:`c2f.stats.compare`."""
    metrics = ["test_elbo_nats"] + ["test_nll_nats"] * nll
    parts = [f"{m.split('_')[1].upper()} at g = {g}: " + compare(
        results["single_steps"], results["single"], f"{m}@{g}", names=("`single_steps`", "`single`")).sentence(
        digits=2) for m in metrics for g in (1, groups)]
    return "; ".join(parts)
