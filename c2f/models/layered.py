"""Machinery shared by the models with several latent layers (chapter 04).

Every such model has latent layers l = 1..L (layer 1 nearest the image), sizes ``layer_sizes``, and
reports the KL of each latent unit in ``elbo_terms(x).kl_dims`` in layer order, so that the KL and the
active units of each layer follow from :func:`split_layers`. Helpers here:

* the layers' posteriors and priors are :class:`c2f.nn.GaussianHead` s with the log-variance bounded softly
  by :data:`c2f.nn.LOGVAR_BOUND`, passed around as their (mean, log-variance) pairs, ``head.params(h)``, not as
  distribution objects: the Ladder VAE combines two Gaussians by their parameters
  (:func:`precision_weighted`), and a conditional prior is edited by them (:func:`traverse_layer`);
  :func:`normal` turns a pair into the ``torch.distributions`` object wherever one is sampled or scored;
* :func:`precision_weighted` the Ladder VAE's combination of two Gaussian estimates of the same variable;
* :class:`IndependentLatentVAE` the base of the models whose latent layers are a priori independent
  N(0, I) and inferred from x independently (VLAE, SVAE, MSVAE): ELBO, importance weights, posterior means
  and the image helpers follow from ``_posteriors(x)`` and ``_logits(zs)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Normal, kl_divergence

from c2f.nn import pixel_likelihood, standard_normal
from c2f.objectives import CodeOrder, ElboTerms, negative_elbo

def normal(params, temperature: float = 1.0) -> Normal:
    """The factorised Normal with (mean, log-variance) `params`, its standard deviation scaled by
    `temperature` (no event dimension: log_prob per unit)."""
    mean, logvar = params
    return Normal(mean, temperature * torch.exp(0.5 * logvar), validate_args=False)


def draw(params, sample: bool = True) -> torch.Tensor:
    """A reparameterised sample of N(mean, exp(logvar)), or its mean when `sample` is False."""
    return normal(params).rsample() if sample else params[0]


def standard_params(n: int, dim: int, device=None):
    """(mean, log-variance) of N(0, I) over `dim` variables for a batch of n."""
    zeros = torch.zeros(n, dim, device=device)
    return zeros, zeros


def precision_weighted(bottom_up, top_down):
    """The Ladder VAE posterior (Sønderby et al. 2016): the product of the two Gaussians, renormalised.

    σ_q^-2 = σ̂^-2 + σ_p^-2 and μ_q = (μ̂ σ̂^-2 + μ_p σ_p^-2) / σ_q^-2, written with sigmoids of the log-variance
    difference so that it stays finite for any pair. Returns (mean, log-variance).
    """
    (mu_hat, lv_hat), (mu_p, lv_p) = bottom_up, top_down
    logvar = -torch.logaddexp(-lv_hat, -lv_p)
    mean = mu_hat * torch.sigmoid(lv_p - lv_hat) + mu_p * torch.sigmoid(lv_hat - lv_p)
    return mean, logvar


def split_layers(values: torch.Tensor, sizes) -> list[torch.Tensor]:
    """Split the last dimension of `values` (e.g. ``kl_dims`` [B, D]) into the model's latent layers."""
    return list(torch.split(values, list(sizes), dim=-1))


def layered_loss(terms: ElboTerms, sizes, kl_weight: float, free_bits: float, recon: torch.Tensor | None = None,
                 extra: dict | None = None):
    """The negative ELBO (reconstruction `recon`, default −log p(x|z), plus the weighted KL) averaged over
    the batch, and the scalars the training loop logs: ``elbo``, ``recon``, ``kl``, the KL of each layer
    ``kl_<l>`` and a minibatch estimate of each layer's active units ``au_<l>`` (from ``terms.means``)."""
    loss, scalars = negative_elbo(terms, kl_weight, free_bits, recon)
    for l, kl in enumerate(split_layers(terms.kl_dims, sizes), 1):
        scalars[f"kl_{l}"] = kl.sum(-1).mean()
    for l, m in enumerate(terms.means, 1):
        scalars[f"au_{l}"] = (m.detach().float().var(0) > 0.01).sum().float() if len(m) > 1 else m.new_zeros(())
    return loss, {**scalars, **(extra or {})}


class IndependentLatentVAE(nn.Module):
    """Latent layers z_1..z_L, each N(0, I) a priori and inferred by its own q(z_l | x); subclasses provide
    ``layer_sizes``, ``_posteriors(x)`` (a list of (mean, log-variance), one per layer) and ``_logits(zs)``
    (the pixel logits of the image the likelihood is evaluated on, for latents with any leading dims)."""

    layer_sizes: tuple[int, ...]

    def likelihood(self, logits):
        """p(x | z) from pixel logits with any leading dims."""
        return pixel_likelihood(logits.view(*logits.shape[:-1], *self.cfg.image_shape), self.cfg.likelihood)

    def decode_layers(self, zs):
        """p(x | z_1..z_L) for latents of shape [..., d_l]."""
        lead = zs[0].shape[:-1]
        logits = self._logits([z.reshape(-1, z.shape[-1]) for z in zs])
        return self.likelihood(logits.view(*lead, -1))

    def elbo_terms(self, x) -> ElboTerms:
        """Per-example log p(x|z) and KL of every latent unit (closed form, layer order), with the samples."""
        qs = self._posteriors(x)
        zs = [draw(q) for q in qs]
        log_px = self.decode_layers(zs).log_prob(x)
        kl_dims = torch.cat([kl_divergence(normal(q), normal((torch.zeros_like(q[0]),) * 2)) for q in qs], -1)
        return ElboTerms(log_px, kl_dims, zs=zs, means=[q[0] for q in qs])

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        return layered_loss(self.elbo_terms(x), self.layer_sizes, kl_weight, free_bits)

    def log_importance_weights(self, x, k: int):
        """log p(x, z_i) − log q(z_i | x) for k samples z_i ~ q(z | x): shape [k, B]."""
        qs = self._posteriors(x)
        zs = [normal(q).sample((k,)) for q in qs]
        log_w = self.decode_layers(zs).log_prob(x)
        for q, z in zip(qs, zs):
            log_w = log_w + standard_normal(z.shape, z.device).log_prob(z) - normal(q).log_prob(z).sum(-1)
        return log_w

    def posterior_means(self, x) -> list[torch.Tensor]:
        """E_q[z_l | x] for every layer."""
        return [q[0] for q in self._posteriors(x)]

    def code_order(self, kl_per_dim) -> CodeOrder:
        """The layers from the top down; the layers below a prefix at their prior mean, 0."""
        L = len(self.layer_sizes)

        def log_px(x, g):
            zs = [m if l >= L - g else torch.zeros_like(m) for l, m in enumerate(self.posterior_means(x))]
            return self.decode_layers(zs).log_prob(x)

        def sample(x, g, image=True):  # the top g layers drawn from q, the others from their prior N(0, I)
            zs = [draw(q) if l >= L - g else torch.randn_like(q[0]) for l, q in enumerate(self._posteriors(x))]
            p = self.decode_layers(zs)
            return p.log_prob(x), (p.mean if image else None)
        return layers_top_first(self.layer_sizes, log_px, sample,
                                lambda x: torch.cat([draw(q) for q in self._posteriors(x)], -1))

    def latent_means(self, x):
        return torch.cat(self.posterior_means(x), -1)

    # --- images --------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, zs):
        """Pixel probabilities for the given latents of every layer."""
        return self.decode_layers(zs).mean

    @torch.no_grad()
    def reconstruct(self, x):
        return self.generate(self.posterior_means(x))

    @torch.no_grad()
    def sample(self, n: int):
        device = next(self.parameters()).device
        return self.generate([torch.randn(n, d, device=device) for d in self.layer_sizes])

    @torch.no_grad()
    def edit_layer(self, x, layer: int, edit):
        """Decode x's posterior means with layer `layer` (1-based) replaced by ``edit(mean, prior)``, where
        prior is the layer's (mean, log-variance) under p; the other layers keep their posterior means
        (the layers are independent a priori, so this is a sample from the model's conditional)."""
        _check_layer(layer, len(self.layer_sizes))
        zs = self.posterior_means(x)
        zs[layer - 1] = edit(zs[layer - 1], standard_params(len(x), self.layer_sizes[layer - 1], x.device))
        return self.generate(zs)


def layers_top_first(layer_sizes, log_px, sample=None, code_sample=None) -> CodeOrder:
    """The code order of a model with latent layers z_1..z_L (bottom first in ``kl_dims``): the top layer
    first; ``log_px(x, g)`` decodes the top g layers (``sample``, ``code_sample``: those of :class:`CodeOrder`)."""
    L, starts = len(layer_sizes), [sum(layer_sizes[:l]) for l in range(len(layer_sizes))]
    cols = [list(range(starts[l], starts[l] + layer_sizes[l])) for l in reversed(range(L))]
    return CodeOrder("latent layers from the top down", [f"layer {l} (of {L})" for l in reversed(range(1, L + 1))],
                     cols, cols, log_px, sample=sample, code_sample=code_sample)


def _check_layer(layer: int, num_layers: int) -> None:
    if not 1 <= layer <= num_layers:
        raise ValueError(f"layer must be in 1..{num_layers}, got {layer}")


@torch.no_grad()
def resample_layer(model, x, layer: int):
    """One image per row of x: x's latents, with layer `layer` drawn afresh from its (conditional) prior."""
    return model.edit_layer(x, layer, lambda mean, prior: draw(prior))


@torch.no_grad()
def traverse_layer(model, x, layer: int, unit: int, values):
    """Decode one image x [1, C, H, W] with unit `unit` of layer `layer` set to μ_p + v σ_p for each v in
    `values` (v prior standard deviations around the layer's, possibly conditional, prior mean)."""
    rows = []
    for v in values:
        def edit(mean, prior, v=float(v)):
            z = mean.clone()
            z[:, unit] = prior[0][:, unit] + v * torch.exp(0.5 * prior[1][:, unit])
            return z
        rows.append(model.edit_layer(x, layer, edit))
    return torch.cat(rows)
