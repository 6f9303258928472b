"""Chapter 06 (PixelVAE): the answers to the chapter's questions, written from the run's numbers."""

from __future__ import annotations

from c2f.findings.targets import target_verdict
from c2f.stats import compare, interval


def likelihood_lines(outcomes: dict, labels: dict[str, str]) -> list[str]:
    """The default PixelVAE against each other model of `outcomes` (the PixelCNN: what z adds to a PixelCNN;
    the conv VAE: what a PixelCNN decoder adds to a VAE; the paper's configurations) on the test NLL, each
    through :func:`c2f.stats.compare`. `outcomes`: a :class:`c2f.experiment.Outcome` by model name."""
    return ["likelihoods: " + compare(outcomes["pixelvae"], outcomes[other], "test_nll_nats",
                                      names=(labels["pixelvae"], labels[other])).sentence(digits=2)
            for other in outcomes if other != "pixelvae"]


def conv_vae_line(history: dict, steps: int) -> str:
    """What the conv VAE baseline is: trained for the same `steps` as every model here, and whether its training
    ELBO (running mean, `history` of :func:`c2f.train.fit`) still rose over its last epoch."""
    elbo = history["epochs"]["elbo"]
    rise = elbo[-1] - elbo[-2] if len(elbo) > 1 else float("nan")
    state = ("still rising at the end, so it is an under-trained baseline" if rise > 0.5 else
             "about flat over its last epoch" if rise == rise else "one epoch: no trend to read")
    change = f"changed by {rise:+.2f} nats over its last epoch" if rise == rise else "has one epoch"
    return (f"the conv VAE is trained for the same {steps} steps as every model here; its training ELBO {change} "
            f"({state}): a comparison at this budget, not of converged models")


def _kl_phrase(c) -> str:
    d = c.difference
    if d.low is None:
        return f"{c.a} − {c.b} = {d.mean:+.2f} nats of KL on one seed, which cannot tell them apart"
    if c.better is None:
        return f"no difference in KL at this budget ({c.a} − {c.b}: {d.low:+.2f} to {d.high:+.2f} nats, 95 % CI over {d.over})"
    more = "more" if d.mean > 0 else "less"
    return f"{more} KL than {c.b} by {abs(d.mean):.2f} nats (95 % CI {d.low:+.2f} to {d.high:+.2f} over {d.over})"


def ablation_lines(outcomes: dict, labels: dict[str, str], reference: str) -> list[str]:
    """Which choice keeps z used: each PixelVAE's KL (mean ± std, lowest seed) and KL-active units, and its KL
    against the `reference` model's, paired over seeds (:func:`c2f.stats.compare`)."""
    lines = []
    for name, o in outcomes.items():
        kl = [r["kl_nats"] for r in o.runs]
        s = o.summary
        line = (f"{labels[name]}: KL {s['kl_nats']:.2f}" + (f" ± {s['kl_nats_std']:.2f}" if "kl_nats_std" in s else "")
                + f" nats (lowest seed {min(kl):.2f}), {s['active_units_kl']:.1f} KL-active units")
        if name != reference:
            line += "; " + _kl_phrase(compare(o, outcomes[reference], "kl_nats", names=(labels[name], labels[reference]),
                                             higher=True))
        lines.append(line)
    return lines


def worst_z_use(runs: list[dict]) -> dict[str, float]:
    """The worst seed of the measures of z's use, which have no direction for :func:`c2f.evaluate.summarise`:
    the lowest KL, KL-active units and share of samples keeping their class with z fixed; the highest share
    keeping it with the pixels' noise fixed. Only for keys every run has, and only with two runs or more."""
    pick = {"kl_nats": min, "active_units_kl": min, "class_kept_fixed_z": min, "class_kept_fixed_noise": max}
    if len(runs) < 2:
        return {}
    return {f"{k}_worst": float(f(r[k] for r in runs)) for k, f in pick.items() if all(k in r for r in runs)}


def class_kept_lines(outcomes: dict, reference: str) -> list[str]:
    """What z holds, by model label: the share of samples that keep their group's class with z fixed and with
    the noise fixed (mean, worst seed), and the linear probe's accuracy; the `reference` (no z) gives the
    agreement of independent samples, the chance level of its class mix."""
    lines = []
    for label, o in outcomes.items():
        s, w = o.summary, worst_z_use(o.runs)
        if label == reference:
            lines.append(f"{label}: independent samples share the class in {100 * s['class_kept_fixed_z']:.0f} % of "
                         f"pairs (its class mix predicts {100 * s['class_chance']:.0f} %)")
            continue
        z_worst = f", worst seed {100 * w['class_kept_fixed_z_worst']:.0f} %" if w else ""
        n_worst = f", worst seed {100 * w['class_kept_fixed_noise_worst']:.0f} %" if w else ""
        lines.append(f"{label}: class kept with z fixed {100 * s['class_kept_fixed_z']:.0f} %{z_worst} (two "
                     f"independent samples of its class mix: {100 * s['class_chance']:.0f} %); with the "
                     f"pixels' noise fixed and z redrawn {100 * s['class_kept_fixed_noise']:.0f} %{n_worst}; a linear "
                     f"probe of z ~ q(z|x) finds the class in {100 * s['probe_accuracy']:.0f} % of test images; "
                     + ("z decides the class more than the pixels' noise" if s["class_kept_fixed_z"] >
                        s["class_kept_fixed_noise"] else "the pixels' noise decides the class more than z"))
    return lines


def z_target_lines(pixelvae, pixelcnn, latent_dim: int, min_kl: float = 3.0, min_units: int = 2,
                   min_kept: float = 0.7) -> list[str]:
    """The default profile's three targets for the default PixelVAE (Outcomes), each on the mean and the
    worst seed: KL ≥ `min_kl` nats with ≥ `min_units` KL-active units; an NLL not worse than the PixelCNN's
    beyond the paired interval (:func:`c2f.stats.compare`); ≥ `min_kept` of samples with z fixed keeping their
    class."""
    kl, units = [r["kl_nats"] for r in pixelvae.runs], [r["active_units_kl"] for r in pixelvae.runs]
    kept = [r["class_kept_fixed_z"] for r in pixelvae.runs]
    met = lambda ok: "met" if ok else "missed"  # noqa: E731
    c = compare(pixelvae, pixelcnn, "test_nll_nats", names=("PixelVAE", "PixelCNN"))
    return [f"target KL ≥ {min_kl:g} nats with ≥ {min_units} KL-active units (mean and worst seed): KL "
            f"{sum(kl) / len(kl):.2f} (worst {min(kl):.2f}), KL-active units {sum(units) / len(units):.1f} (worst "
            f"{min(units):.0f}) of {latent_dim}: {met(min(kl) >= min_kl and min(units) >= min_units)}",
            f"target NLL not worse than the PixelCNN's: {c.sentence(digits=2)}: {met(c.verdict != 'B better')}",
            f"target ≥ {100 * min_kept:.0f} % of samples with z fixed keep their class (mean and worst seed): "
            f"{100 * sum(kept) / len(kept):.0f} % (worst {100 * min(kept):.0f} %): {met(min(kept) >= min_kept)}"]


def dynamic_lines(dynamic: dict, static: dict, labels: dict[str, str], iw_samples: int) -> list[str]:
    """Dynamic binarization: the PixelVAE against the conv VAE on the test NLL, then each model trained on
    the same images binarized afresh (`dynamic`) against once (`static`), scored on the same binary test
    images: paired by seed and test image through :func:`c2f.stats.compare` (Outcomes by model name)."""
    c = compare(dynamic["pixelvae"], dynamic["vae_conv"], "test_nll_nats",
                names=(labels["pixelvae"], labels["vae_conv"]))
    return ([f"dynamic MNIST (K={iw_samples}): {c.sentence(digits=2)}"]
            + [f"same training and test images, {labels[n]}: " + compare(
                dynamic[n], static[n], "test_nll_nats", names=("dynamic", "static binarization")).sentence(digits=2)
               for n in dynamic])


def collapse_lines(summaries: dict[str, dict], latent_dim: int) -> list[str]:
    """Each model's KL and KL-active units of z (means over seeds), and whether z collapsed: fewer than one
    unit above 0.1 nat on average (a single unit that some seeds keep is not a used latent)."""
    return [f"{name}: KL of z {s['kl_nats']:.2f} nats, {s['active_units_kl']:.1f}/{latent_dim} KL-active units ("
            + ("collapsed: fewer than one unit above 0.1 nat on average" if s["active_units_kl"] < 1 else
               "not collapsed") + ")"
            for name, s in summaries.items()]


def sampling_line(changes: dict[str, float]) -> str:
    """What decides a PixelVAE's image: z (the pixels' noise fixed) or the decoder's sampling (z fixed)."""
    by_noise, by_z = changes["pixels_changed_by_noise"], changes["pixels_changed_by_z"]
    return (f"redrawing the pixels' noise changes {by_noise:.0f} pixels, redrawing z {by_z:.0f} (two test "
            f"images: {changes['pixels_between_test_images']:.0f}): "
            + ("z decides more of the image than the decoder's sampling" if by_z > by_noise else
               "the decoder's own sampling decides more of the image than z"))


def layer_line(kl: dict[int, list[float]], units: dict[int, list[float]]) -> str:
    """The KL (mean ± std over seeds) and the KL-active units of z against the decoder's depth (0 layers: the
    conv VAE), and the depths at which z collapsed (no KL-active unit in any seed)."""
    def ms(v):
        m = sum(v) / len(v)
        return f"{m:.2f}" + (f" ± {(sum((x - m) ** 2 for x in v) / (len(v) - 1)) ** 0.5:.2f}" if len(v) > 1 else "")

    collapsed = [f"L={d}" for d, n in units.items() if max(n) == 0]
    return ("depth: KL " + ", ".join(f"L={d} {ms(k)}" for d, k in kl.items()) + " nats, KL-active units "
            + ", ".join(f"L={d} {sum(n) / len(n):.1f}" for d, n in units.items()) + "; "
            + (f"z collapsed (no KL-active unit in any seed) at {', '.join(collapsed)}" if collapsed
               else "no depth collapses z entirely"))


def two_level_line(report: dict, latent_dims: tuple[int, int]) -> str:
    """Each level's KL and active units in the two-level PixelVAE, and which levels are used: the top level
    switched off with z1 used is what Zhao et al. predict; both levels off is a total collapse."""
    used = [report[f"active_units_layer_{i}"] > 0 for i in (1, 2)]
    verdict = ("both levels are used" if all(used) else
               "the top level is switched off while z1 is used, as Zhao et al. predict" if used[0] else
               "z1 is switched off while z2 is used" if used[1] else
               "both levels collapsed: a total collapse, not the top-level switch-off Zhao et al. predict")
    return (f"two-level model: KL z1 {report['kl_layer_1']:.2f}, z2 {report['kl_layer_2']:.2f} of "
            f"{report['kl_nats']:.2f} nats; active units z1 {report['active_units_layer_1']:.1f}/{latent_dims[0]}, "
            f"z2 {report['active_units_layer_2']:.1f}/{latent_dims[1]}: {verdict}")


def target_line(nll: list[float], iw_samples: int, budget: str, target: float = 79.0) -> str:
    """The full profile's target, a PixelVAE NLL of at most 79.0 nats with K = 1000, against this run's NLL
    per seed (:func:`c2f.findings.targets.target_verdict`); not comparable with K < 1000 (a looser bound)."""
    i = interval(nll)
    span = "" if i.low is None else f" (95 % CI {i.low:.2f} to {i.high:.2f} over {i.over})"
    verdict = "not comparable (K < 1000)" if iw_samples < 1000 else target_verdict(nll, target, higher=False)
    return (f"target (full profile, all data, K=1000): PixelVAE NLL ≤ {target} nats; this run: {i.mean:.2f} nats"
            f"{span} with K={iw_samples} {budget}: {verdict}")
