"""Chapter 06 (PixelVAE): the answers to the chapter's questions, written from the run's numbers."""

from __future__ import annotations

from c2f.findings.targets import target_verdict
from c2f.stats import compare, interval


def likelihood_lines(outcomes: dict, labels: dict[str, str]) -> list[str]:
    """The PixelVAE (z as bias) against the PixelCNN (what z adds to a PixelCNN), the conv VAE (what a PixelCNN
    decoder adds to a VAE) and the PixelVAE with z upsampled, on the test NLL, each through
    :func:`c2f.stats.compare`. `outcomes`: a :class:`c2f.experiment.Outcome` by model name."""
    return ["likelihoods: " + compare(outcomes["pixelvae"], outcomes[other], "test_nll_nats",
                                      names=(labels["pixelvae"], labels[other])).sentence(digits=2)
            for other in ("pixelcnn", "vae_conv", "pixelvae_up")]


def dynamic_line(outcomes: dict, static_nll: dict[str, float], labels: dict[str, str], iw_samples: int) -> str:
    """On dynamically binarized MNIST, the PixelVAE (z as bias) against the conv VAE on the test NLL through
    :func:`c2f.stats.compare` (`outcomes`: an Outcome by model name), and each model's dynamic minus static NLL
    (`static_nll`: its mean static NLL), a difference of two data sets, stated, not ranked."""
    c = compare(outcomes["pixelvae"], outcomes["vae_conv"], "test_nll_nats",
                names=(labels["pixelvae"], labels["vae_conv"]))
    shift = ", ".join(f"{labels[n]} {o.summary['test_nll_nats'] - static_nll[n]:+.2f}" for n, o in outcomes.items())
    return f"dynamic MNIST (K={iw_samples}): {c.sentence(digits=2)}; dynamic minus static NLL: {shift} nats"


def collapse_lines(summaries: dict[str, dict], latent_dim: int) -> list[str]:
    """Each model's KL and active units of z, and whether z collapsed by the active-unit criterion."""
    return [f"{name}: KL of z {s['kl_nats']:.2f} nats, {s['active_units']:.0f}/{latent_dim} active units ("
            + ("collapsed by the active-unit criterion" if s["active_units"] == 0 else "not collapsed") + ")"
            for name, s in summaries.items()]


def sampling_line(changes: dict[str, float]) -> str:
    """What decides a PixelVAE's image: z (the pixels' noise fixed) or the decoder's sampling (z fixed)."""
    by_noise, by_z = changes["pixels_changed_by_noise"], changes["pixels_changed_by_z"]
    return (f"redrawing the pixels' noise changes {by_noise:.0f} pixels, redrawing z {by_z:.0f} (two test "
            f"images: {changes['pixels_between_test_images']:.0f}): "
            + ("z decides more of the image than the decoder's sampling" if by_z > by_noise else
               "the decoder's own sampling decides more of the image than z"))


def layer_line(kl: dict[int, float], units: dict[int, float]) -> str:
    """The KL and the active units of z against the decoder's depth (0 layers: the conv VAE)."""
    collapsed = [f"L={depth}" for depth, n in units.items() if n == 0]
    return ("depth: KL " + ", ".join(f"L={d} {k:.2f}" for d, k in kl.items()) + " nats, active units "
            + ", ".join(f"L={d} {n:.0f}" for d, n in units.items()) + "; "
            + (f"z collapsed (no active unit) at {', '.join(collapsed)}" if collapsed
               else "no depth collapses z entirely"))


def two_level_line(report: dict, top_units: int) -> str:
    """How much of the two-level PixelVAE's KL its top level z2 carries, and whether it is switched off."""
    share = report["kl_layer_2"] / max(report["kl_nats"], 1e-9)
    return (f"two-level model: z2 holds {report['kl_layer_2']:.2f} of {report['kl_nats']:.2f} nats of KL "
            f"({100 * share:.0f}%), {report['active_units_layer_2']:.0f}/{top_units} active units: "
            + ("the top level is switched off, as Zhao et al. predict" if report["active_units_layer_2"] == 0 else
               "the top level is used"))


def target_line(nll: list[float], iw_samples: int, budget: str, target: float = 79.0) -> str:
    """The full profile's target, a PixelVAE NLL of at most 79.0 nats with K = 1000, against this run's NLL
    per seed (:func:`c2f.findings.targets.target_verdict`); not comparable with K < 1000 (a looser bound)."""
    i = interval(nll)
    span = "" if i.low is None else f" (95 % CI {i.low:.2f} to {i.high:.2f} over {i.over})"
    verdict = "not comparable (K < 1000)" if iw_samples < 1000 else target_verdict(nll, target, higher=False)
    return (f"target (full profile, all data, K=1000): PixelVAE NLL ≤ {target} nats; this run: {i.mean:.2f} nats"
            f"{span} with K={iw_samples} {budget}: {verdict}")
