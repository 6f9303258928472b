"""The Multi-Stage VAE (Cai, Gao & Ji 2017): a first decoder stage makes a coarse image from z, a second
stage of residual convolution blocks sharpens it, seeing only the coarse image; trained jointly.

The paper's first stage has an ℓ2 loss. On binary images we give it a Bernoulli likelihood instead, so the
model z → stage 1 → x is a likelihood model whose ELBO and importance-weighted NLL are comparable with the
other models' (``elbo_terms`` and ``log_importance_weights`` are those of stage 1). The second stage keeps
the paper's ℓ1 loss, ``l1_weight`` · Σ_pixels |x − ŷ_2|; it is not a density, so it is reported separately
as the ℓ1 error of each stage (:meth:`MSVAE.l1_errors`). Its gradient also reaches stage 1 and the encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from c2f.models.layered import IndependentLatentVAE, layered_loss
from c2f.nn import ACTIVATIONS, LOGVAR_BOUND, GaussianHead, ImageConfig, mlp


@dataclass
class MSVAEConfig(ImageConfig):
    latent_dim: int = 56
    hidden: tuple[int, ...] = (512, 256)  # encoder widths; stage 1 mirrors them
    channels: int = 16  # stage 2: channels of the residual blocks
    res_blocks: int = 2
    l1_weight: float = 1.0
    activation: str = "elu"
    batch_norm: bool = True
    likelihood: str = "bernoulli"
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self):
        self.hidden = tuple(self.hidden)
        if self.latent_dim < 1 or self.channels < 1 or self.res_blocks < 0 or self.l1_weight < 0:
            raise ValueError("latent_dim and channels must be positive, res_blocks and l1_weight non-negative")


class ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))) with 3x3 convolutions."""

    def __init__(self, channels: int, activation: str = "elu"):
        super().__init__()
        act = ACTIVATIONS[activation]
        self.net = nn.Sequential(act(), nn.Conv2d(channels, channels, 3, padding=1), act(),
                                 nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.net(x)


class MSVAE(IndependentLatentVAE):
    def __init__(self, cfg: MSVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.layer_sizes = (cfg.latent_dim,)
        c = cfg.image_shape[0]
        self.encoder = mlp([cfg.pixels, *cfg.hidden], cfg.activation, cfg.batch_norm, last_activation=True)
        self.head = GaussianHead(cfg.hidden[-1], cfg.latent_dim, LOGVAR_BOUND)
        self.stage1 = mlp([cfg.latent_dim, *reversed(cfg.hidden), cfg.pixels], cfg.activation, cfg.batch_norm)
        self.stage2 = nn.Sequential(nn.Conv2d(c, cfg.channels, 3, padding=1),
                                    *[ResidualBlock(cfg.channels, cfg.activation) for _ in range(cfg.res_blocks)],
                                    ACTIVATIONS[cfg.activation](), nn.Conv2d(cfg.channels, c, 3, padding=1))

    def _posteriors(self, x):
        return [self.head.params(self.encoder(x.flatten(1)))]

    def _logits(self, zs):
        return self.stage1(zs[0])

    def sharpen(self, coarse):
        """Stage 2: the sharpened image in (0, 1) from the coarse one (its only input), with a skip
        connection in logit space."""
        skip = torch.logit(coarse.clamp(1e-4, 1 - 1e-4))
        return torch.sigmoid(skip + self.stage2(coarse))

    def stages(self, zs):
        """(ŷ_1, ŷ_2): the coarse and the sharpened image for latents zs (a one-element list)."""
        coarse = torch.sigmoid(self._logits(zs)).view(-1, *self.cfg.image_shape)
        return coarse, self.sharpen(coarse)

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Stage 1's negative ELBO (with the weighted KL) plus l1_weight × the ℓ1 error of stage 2."""
        terms = self.elbo_terms(x)
        l1 = (x - self.stages(terms.zs)[1]).abs().flatten(1).sum(-1).mean()
        recon = -terms.log_px.mean() + self.cfg.l1_weight * l1
        return layered_loss(terms, self.layer_sizes, kl_weight, free_bits, recon=recon, extra={"l1_stage2": l1})

    @torch.no_grad()
    def l1_errors(self, x):
        """Mean ℓ1 error per image (Σ over pixels) of each stage at the posterior mean: (stage 1, stage 2)."""
        coarse, sharp = self.stages(self.posterior_means(x))
        return [(x - y).abs().flatten(1).sum(-1).mean().item() for y in (coarse, sharp)]

    @torch.no_grad()
    def stage_images(self, x=None, n: int = 0):
        """[ŷ_1, ŷ_2] at the posterior mean of x, or for n prior samples."""
        device = next(self.parameters()).device
        zs = self.posterior_means(x) if x is not None else [torch.randn(n, self.cfg.latent_dim, device=device)]
        return list(self.stages(zs))
