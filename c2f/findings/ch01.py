"""Chapter 01 (variational autoencoders): the MLP and the convolutional VAE at one budget, in sentences."""

from __future__ import annotations

from c2f.findings.targets import target_verdict
from c2f.stats import compare, interval

NAMES = {"vae_mlp": "the MLP VAE", "vae_conv": "the conv VAE"}


def comparison(results: dict, epochs: dict[str, int], iw_samples: int) -> str:
    """The conv VAE against the MLP VAE on the test ELBO and NLL through :func:`c2f.stats.compare` (paired over
    the seeds and the test images), when both had the same number of epochs; else that they are not compared.
    `results`: the chapter's :class:`c2f.experiment.Outcome` by model name."""
    if epochs["vae_mlp"] != epochs["vae_conv"]:
        return (f"At different budgets ({epochs['vae_mlp']} MLP epochs, {epochs['vae_conv']} conv epochs) the two "
                "VAEs are not compared")
    pair = results["vae_conv"], results["vae_mlp"]
    names = NAMES["vae_conv"], NAMES["vae_mlp"]
    elbo = compare(*pair, "test_elbo_nats", names=names).sentence()
    nll = compare(*pair, "test_nll_nats", names=names).sentence()
    return (f"With the same budget of {epochs['vae_conv']} epochs each, on the test ELBO {elbo}; on the NLL "
            f"($K = {iw_samples}$) {nll}")


def convergence(rise: dict[str, float], threshold: float = 0.1) -> str:
    """How much each model's validation ELBO changed over the last epoch, and which are still rising."""
    rising = [NAMES.get(n, n) for n, r in rise.items() if r > threshold]
    return ("Over the last epoch the validation ELBO changed by " + " and ".join(
        f"{r:+.2f} nats ({NAMES.get(n, n)})" for n, r in rise.items()) + ": "
        + (f"{' and '.join(rising)} had not converged" if rising else
           f"neither rose by more than {threshold} nats"))


def units(counts: dict[str, tuple[int, int, int]], latent_dim: int, quiet_max: float) -> str:
    """Active units per model by the KL criterion and by the covariance criterion, and how many pass the
    covariance criterion while carrying at most 0.1 nats (`counts`: name -> (KL, covariance, both))."""
    d = latent_dim
    kl, cov, quiet = ([f"{c[i]} of {d} ({NAMES.get(n, n)})" for n, c in counts.items()] for i in range(3))
    return (f"By the KL criterion the models use {' and '.join(kl)} units; the covariance criterion counts "
            f"{' and '.join(cov)}, because {' and '.join(quiet)} units have posterior means that vary across "
            f"images yet carry at most {quiet_max:.2f} nats each")


def iw_tightening(gaps: dict[str, tuple[float, float]], ks: list[int], k_table: int, images: int) -> str:
    """How much −L_K still falls on the curve's images, from the table's K and over the last step of K
    (`gaps`: name -> (fall over the last step, fall from the table's K))."""
    return (f"On the curve's {images} images, −$\\mathcal L_K$ changes by "
            + " and ".join(f"{-g[1]:+.2f} ({NAMES.get(n, n)})" for n, g in gaps.items())
            + f" nats from $K = {k_table}$ to $K = {ks[-1]}$, and by "
            + " and ".join(f"{-g[0]:+.2f}" for g in gaps.values())
            + f" nats between $K = {ks[-2]}$ and {ks[-1]}: where it still falls, the table's NLL overstates the "
              "true NLL by at least that much")


def target(nll_per_image, iw_samples: int, target_nats: float = 84.5, reference: float = 86.76) -> str:
    """The conv VAE's test NLL against the full profile's target: met when its 95 % interval (over seeds, and
    over test images where per-image values are given) lies below the target, missed when it lies above."""
    i = interval(nll_per_image)
    verdict = target_verdict(nll_per_image, target_nats, higher=False)
    span = "" if i.low is None else f", 95 % CI {i.low:.2f} to {i.high:.2f} over {i.over}"
    return (f"conv VAE test NLL {i.mean:.2f} nats (K={iw_samples}{span}) against the full-profile target of "
            f"{target_nats} nats: {verdict} ({i.mean - reference:+.2f} nats relative to Burda et al.'s {reference})")
