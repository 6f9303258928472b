"""Evaluation: ELBO, importance-weighted NLL, bits/dim, KL per latent dimension, active units, summaries.

Models provide ``elbo_terms(x)`` (per-example ``log_px``, ``kl``, ``kl_dims``, ``elbo``),
``log_importance_weights(x, k)`` (shape [k, B]) and ``latent_means(x)``; evaluation runs on a fixed
binarization of the data so that numbers repeat.
"""

from __future__ import annotations

import math

import torch

from c2f.data import ImageSet, batches


@torch.no_grad()
def iw_log_likelihood(model, x: torch.Tensor, k: int, chunk: int = 100, **model_kwargs) -> torch.Tensor:
    """Importance-sampled estimate of log p(x) per example (Burda et al. 2016):

    log p(x) ≈ logsumexp_i [log p(x, z_i) − log q(z_i | x)] − log k,  z_i ~ q(z | x), i = 1..k.

    The k samples are drawn in chunks of `chunk` to bound memory. `model_kwargs` (e.g. ``groups=g`` for a
    model that can decode a prefix of its latent groups) are passed to ``log_importance_weights``.
    """
    logw = torch.cat([model.log_importance_weights(x, min(chunk, k - i), **model_kwargs)
                      for i in range(0, k, chunk)])
    return torch.logsumexp(logw.float(), dim=0) - math.log(k)


@torch.no_grad()
def elbo(model, data: ImageSet, *, batch_size: int = 500, seed: int = 0) -> float:
    """Mean test ELBO in nats (one posterior sample per image; the KL in closed form)."""
    return evaluate(model, data, batch_size=batch_size, seed=seed)["elbo_nats"]


@torch.no_grad()
def evaluate(model, data: ImageSet, *, iw_samples: int = 0, batch_size: int = 500, seed: int = 0,
             iw_batch: int = 20_000, **model_kwargs) -> dict:
    """ELBO and its terms, KL per latent dimension and, with `iw_samples` > 0, the IW estimate of NLL.

    Returns means over the data in nats: ``elbo_nats`` (≤ log p(x), higher is better), ``recon_nats``
    (−E_q log p(x|z)), ``kl_nats``, ``kl_per_dim`` (list), ``nll_nats`` (−log p(x) estimated with
    ``iw_samples`` samples; lower is better) and ``bits_per_dim`` (from the NLL, else from the ELBO).
    At most `iw_batch` images are decoded at once. The samples are drawn with `seed`, so numbers repeat.
    `model_kwargs` are passed to ``elbo_terms`` and ``log_importance_weights``, e.g. ``groups=g`` to
    evaluate the model that decodes only its first g latent groups (see :func:`prefix_curve`).
    """
    was_training = model.training
    model.eval()
    data = data.fixed_binarization(seed)
    sums = {"elbo": 0.0, "log_px": 0.0, "kl": 0.0, "nll": 0.0}
    kl_dims = 0.0
    devices = [data.x.device] if data.x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # seeded here, and the caller's random state left alone
        torch.manual_seed(seed)
        for x, _ in batches(data, batch_size, shuffle=False):
            t = model.elbo_terms(x, **model_kwargs)
            for key in ("elbo", "log_px", "kl"):
                sums[key] += t[key].sum().item()
            kl_dims = kl_dims + t["kl_dims"].sum(0)
            if iw_samples > 0:
                chunk = max(1, iw_batch // x.shape[0])
                sums["nll"] -= iw_log_likelihood(model, x, iw_samples, chunk, **model_kwargs).sum().item()
    model.train(was_training)
    n, pixels = len(data), math.prod(data.image_shape)
    out = {
        "elbo_nats": sums["elbo"] / n,
        "recon_nats": -sums["log_px"] / n,
        "kl_nats": sums["kl"] / n,
        "kl_per_dim": (kl_dims / n).tolist(),
    }
    if iw_samples > 0:
        out["nll_nats"] = sums["nll"] / n
    out["bits_per_dim"] = out.get("nll_nats", -out["elbo_nats"]) / (pixels * math.log(2))
    return out


def prefix_curve(model, data: ImageSet, *, iw_samples: int = 0, seed: int = 0, batch_size: int = 500) -> list[dict]:
    """:func:`evaluate` for every prefix: entry g−1 is the model that decodes latent groups 1..g only.

    The model must have ``num_groups`` and accept ``groups=g`` in ``elbo_terms`` and
    ``log_importance_weights``. Every prefix is evaluated with the same seed, so the curves repeat.
    """
    return [evaluate(model, data, iw_samples=iw_samples, seed=seed, batch_size=batch_size, groups=g)
            for g in range(1, model.num_groups + 1)]


@torch.no_grad()
def latent_means(model, data: ImageSet, *, batch_size: int = 1000, seed: int = 0) -> torch.Tensor:
    """E_q[z | x] for every image of a fixed binarization of `data`: shape [N, D]."""
    model.eval()
    data = data.fixed_binarization(seed)
    return torch.cat([model.latent_means(x) for x, _ in batches(data, batch_size, shuffle=False)])


def active_units(means: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """Burda et al.'s criterion: unit u is active when Cov_x(E_q[z_u | x]) > `threshold`.

    Takes the posterior means [N, D]; returns the count and the per-unit variances.
    """
    variances = means.float().var(dim=0)
    return int((variances > threshold).sum()), variances


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation over runs (e.g. seeds) of each scalar metric: ``name`` and ``name_std``."""
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float))]
    out = {}
    for k in keys:
        values = torch.tensor([float(r[k]) for r in runs], dtype=torch.float64)
        out[k] = values.mean().item()
        out[f"{k}_std"] = values.std(unbiased=True).item() if len(runs) > 1 else 0.0
    return out
