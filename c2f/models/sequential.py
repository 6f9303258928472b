"""The Sequential VAE (Zhao, Song & Ermon 2017a): a chain of images x̂_1..x̂_T, each made from its own latent
and the previous image, with a pixel loss at every step.

Step t draws z_t ~ q(z_t | x) (one shared encoder trunk, one head per step) and computes the pixel
probabilities x̂_t = σ(f_t([z_t, x̂_t-1])), with x̂_0 = 0 (a blank image) and a separate network f_t per
step. Training minimises Σ_t −log p(x | x̂_t) + Σ_t KL(q(z_t | x) ‖ N(0, I)): every step is asked to
reproduce the data. The model whose likelihood we report is the chain's **final** image,
p(x | z_1..z_T) = Bernoulli(x̂_T), so ``elbo_terms`` and ``log_importance_weights`` are the ELBO and the
importance weights of that model (all T latents; the intermediate losses are a training device).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from c2f.models.layered import IndependentLatentVAE, layered_loss
from c2f.nn import LOGVAR_BOUND, GaussianHead, ImageConfig, mlp


@dataclass
class SVAEConfig(ImageConfig):
    latent_dims: tuple[int, ...] = (32, 16, 8)  # units of z_1..z_T (one per step)
    hidden: tuple[int, ...] = (512, 256)  # shared encoder trunk; every step's decoder uses hidden[0]
    activation: str = "elu"
    batch_norm: bool = True
    step_weights: str = "equal"  # equal: every step's pixel loss counts once; final: the last step only
    likelihood: str = "bernoulli"
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self):
        self.latent_dims, self.hidden = tuple(self.latent_dims), tuple(self.hidden)
        if not self.latent_dims or min(self.latent_dims) < 1:
            raise ValueError(f"latent_dims must be positive, one entry per step: {self.latent_dims}")
        if self.step_weights not in ("equal", "final"):
            raise ValueError(f"unknown step_weights {self.step_weights!r}; choose 'equal' or 'final'")


class SVAE(IndependentLatentVAE):
    def __init__(self, cfg: SVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.layer_sizes = cfg.latent_dims
        self.trunk = mlp([cfg.pixels, *cfg.hidden], cfg.activation, cfg.batch_norm, last_activation=True)
        self.heads = nn.ModuleList(GaussianHead(cfg.hidden[-1], d, LOGVAR_BOUND) for d in cfg.latent_dims)
        self.steps = nn.ModuleList(
            mlp([d + (cfg.pixels if t > 0 else 0), cfg.hidden[0], cfg.hidden[0], cfg.pixels], cfg.activation,
                cfg.batch_norm) for t, d in enumerate(cfg.latent_dims))

    def _posteriors(self, x):
        h = self.trunk(x.flatten(1))
        return [head.params(h) for head in self.heads]

    def step_logits(self, zs) -> list[torch.Tensor]:
        """The pixel logits of x̂_1..x̂_T; step t sees z_t and the probabilities x̂_t-1."""
        out, prev = [], None
        for t, z in enumerate(zs):
            out.append(self.steps[t](z if prev is None else torch.cat([z, prev], -1)))
            prev = torch.sigmoid(out[-1])
        return out

    def _logits(self, zs):
        return self.step_logits(zs)[-1]

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Σ_t −log p(x | x̂_t) (or the last step only) plus the weighted KL; logs each step's loss."""
        terms = self.elbo_terms(x)
        step_nll = [-self.likelihood(lg).log_prob(x).mean() for lg in self.step_logits(terms.zs)]
        recon = sum(step_nll) if self.cfg.step_weights == "equal" else step_nll[-1]
        return layered_loss(terms, self.layer_sizes, kl_weight, free_bits, recon=recon,
                            extra={f"recon_{t}": v for t, v in enumerate(step_nll, 1)})

    @torch.no_grad()
    def step_images(self, x=None, n: int = 0):
        """x̂_1..x̂_T (pixel probabilities) at the posterior means of x, or for n prior samples."""
        device = next(self.parameters()).device
        zs = self.posterior_means(x) if x is not None else [torch.randn(n, d, device=device)
                                                             for d in self.layer_sizes]
        return [torch.sigmoid(lg).view(-1, *self.cfg.image_shape) for lg in self.step_logits(zs)]
