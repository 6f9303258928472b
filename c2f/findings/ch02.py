"""Chapter 02 (progressive coarse-to-fine VAEs): rankings by prefix curve and the targets, in sentences.

A model's *area* is the mean of its prefix curve over g = 1..G, computed per test image so that two models
are compared through :func:`c2f.stats.compare` over the seeds and the test images. The Standard VAE's area is
that of its fair control (groups ranked by KL, the rest drawn from the prior), named :data:`FAIR`.
"""

from __future__ import annotations

import numpy as np

from c2f.stats import NO_DIFFERENCE, compare, interval, ranking

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
    """The ranking table by area (:func:`c2f.stats.ranking`, with intervals) and a sentence: the model with the
    best mean against the second through :func:`c2f.stats.compare`; it is said to come first only when the
    interval of the difference excludes 0."""
    table = ranking(values, "area", higher=higher, digits=2)
    first, second = order(values, higher)[:2]
    c = compare(values[first], values[second], "area", names=(f"`{first}`", f"`{second}`"), higher=higher)
    if c.better is None:
        return table, (f"By area on {label}, `{first}` has the best mean ({values[first].mean():.2f} nats) and "
                       f"`{second}` the next, but the two are not ranked: {c.sentence(digits=2)}.")
    return table, (f"By area on {label}, `{first}` comes first ({values[first].mean():.2f} nats) and `{second}` "
                   f"second: {c.sentence(digits=2)}.")


def same_order(elbo: dict[str, np.ndarray], nll: dict[str, np.ndarray]) -> str:
    """Whether the areas under the ELBO curve and under the NLL curve order the models the same way (the
    models with both curves). The orders are those of the means; every pair of models the two orders swap is
    compared on both areas through :func:`c2f.stats.compare`, and a swap counts only where both intervals
    exclude 0."""
    names = [n for n in elbo if n in nll]
    by_elbo = order({n: elbo[n] for n in names})
    by_nll = order({n: nll[n] for n in names}, higher=False)
    if by_elbo == by_nll:
        return (f"The NLL curve's areas order the means of the models as the ELBO's do ({', '.join(by_elbo)}), so "
                "the ELBO's order is not in the posteriors' tightness.")
    swapped = [(a, b) for i, a in enumerate(by_elbo) for b in by_elbo[i + 1:] if by_nll.index(b) < by_nll.index(a)]
    parts, resolved = [], 0
    for a, b in swapped:
        ce = compare(elbo[a], elbo[b], "area", names=(f"`{a}`", f"`{b}`"), higher=True)
        cn = compare(nll[a], nll[b], "area", names=(f"`{a}`", f"`{b}`"), higher=False)
        resolved += ce.better == f"`{a}`" and cn.better == f"`{b}`"
        parts.append(f"on the ELBO's area {ce.sentence(digits=2)}, on the NLL's {cn.sentence(digits=2)}")
    verdict = (f"{resolved} of the {len(swapped)} swapped pair(s) are resolved by both intervals: for those pairs "
               "part of the ELBO's order is in the posteriors' tightness, not in the models" if resolved else
               "No swapped pair is resolved by both intervals, so at this budget the two curves do not order the "
               "models differently")
    return (f"The means of the NLL curve's areas order the models {', '.join(by_nll)}; the ELBO's "
            f"{', '.join(by_elbo)}. The two orders swap {len(swapped)} pair(s): " + "; ".join(parts)
            + f". {verdict}.")


def fair_control(results: dict, no_latents: float, groups: int) -> str:
    """The Standard VAE's fair control at g = 1 (its highest-KL group inferred, every other group drawn from
    the prior) against decoding its first group with the others absent, through :func:`c2f.stats.compare`."""
    s = results["standard"].summary
    fair = [s[f"completed_elbo_nats@{g}"] for g in range(1, groups + 1)]
    per_image = [np.stack([r[f"{k}@1_per_image"] for r in results["standard"].runs])
                 for k in ("completed_elbo_nats", "test_elbo_nats")]
    c = compare(*per_image, "elbo", names=("the fair control", "the prefix decoding"), higher=True)
    return (f"The fair Standard control, with its groups ranked by KL, scores {fair[0]:.2f} nats at g = 1 (its "
            f"highest-KL group inferred and the other {groups - 1} drawn from the prior; the prefix decoding of "
            f"its first group, the other {groups - 1} absent, gave {s['test_elbo_nats@1']:.2f}; no latents "
            f"{no_latents:.2f}) and is above the no-latent line at {sum(v > no_latents for v in fair)} of {groups} "
            f"values of g. At g = 1, {c.sentence(digits=2)}. The two decode different inputs: one inferred group "
            f"plus {groups - 1} prior draws, which the decoder was trained on, against one group and {groups - 1} "
            f"absent ones, which it never saw; neither is what one group explains alone.")


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
    scored), and the rise of each measure from g = 1 to g = G (the ELBO's gain, the NLL's fall), each through
    :func:`c2f.stats.compare`."""
    metrics = ["test_elbo_nats"] + ["test_nll_nats"] * nll
    names = ("`single_steps`", "`single`")
    parts = [f"{m.split('_')[1].upper()} at g = {g}: " + compare(
        results["single_steps"], results["single"], f"{m}@{g}", names=names).sentence(digits=2)
        for m in metrics for g in (1, groups)]

    def rise(name, m):  # per seed and image, how much the measure improves from g = 1 to g = G
        v = [np.stack([r[f"{m}@{g}_per_image"] for r in results[name].runs]) for g in (1, groups)]
        return (v[1] - v[0]) * (1 if m == "test_elbo_nats" else -1)
    parts += [f"the {m.split('_')[1].upper()}'s improvement from g = 1 to g = {groups}: " + compare(
        rise("single_steps", m), rise("single", m), "rise", names=names, higher=True).sentence(digits=2)
        for m in metrics]
    return "; ".join(parts)


def prefix_verdicts(results: dict, a: str, b: str, groups: int) -> str:
    """Model `a` against model `b` on the ELBO of every prefix g = 1..G (:func:`c2f.stats.compare` at each g):
    at how many prefixes each is better and at how many the interval contains 0."""
    v = [compare(results[a], results[b], f"test_elbo_nats@{g}").verdict for g in range(1, groups + 1)]
    return (f"on the ELBO of each prefix, `{a}` is better than `{b}` at {v.count('A better')}, `{b}` better at "
            f"{v.count('B better')}, no difference at {v.count(NO_DIFFERENCE)} of {groups} prefixes"
            + (f" (one seed: cannot tell at {v.count('cannot tell (one seed)')})" if "cannot tell (one seed)" in v
               else "") + " (95 % intervals)")
