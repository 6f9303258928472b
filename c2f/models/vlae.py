"""The Variational Ladder Autoencoder (Zhao, Song & Ermon 2017b; "VLAE-ladder", not the Variational Lossy AE).

All latent layers are independent a priori, z_l ~ N(0, I), and the hierarchy comes from *depth*: one
deterministic generator injects z_L at its top, z_L-1 one block lower and so on, z_1 just before the output,

    t_L = f_L(z_L),   t_l = f_l([t_l+1, z_l]) for l < L,   x ~ Bernoulli(σ(f_0(t_1))).

Inference mirrors it: one bottom-up encoder h_l = g_l(h_l-1), h_0 = x, and q(z_l | x) = N(μ_l(h_l),
σ_l²(h_l)) reads the feature at the matching depth. The ELBO is that of a one-layer VAE whose latent is the
concatenation of the layers, so the KL of every layer is in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from c2f.models.hierarchical import HierarchicalConfig
from c2f.models.layered import IndependentLatentVAE
from c2f.nn import LOGVAR_BOUND, GaussianHead, mlp


@dataclass
class VLAEConfig(HierarchicalConfig):
    """Same fields as :class:`HierarchicalConfig`: ``hidden[l]`` is the width of encoder block l and of the
    generator block that receives z_l."""


class VLAE(IndependentLatentVAE):
    def __init__(self, cfg: VLAEConfig):
        super().__init__()
        self.cfg = cfg
        self.layer_sizes = cfg.latent_dims
        d, h, L = cfg.latent_dims, cfg.hidden, len(cfg.latent_dims)

        def block(n_in, width):
            return mlp([n_in] + [width] * cfg.block_layers, cfg.activation, cfg.batch_norm, last_activation=True)

        self.encoder = nn.ModuleList(block(cfg.pixels if l == 0 else h[l - 1], h[l]) for l in range(L))
        self.heads = nn.ModuleList(GaussianHead(h[l], d[l], LOGVAR_BOUND) for l in range(L))
        self.generator = nn.ModuleList(block(d[l] + (h[l + 1] if l < L - 1 else 0), h[l]) for l in range(L))
        self.output = nn.Linear(h[0], cfg.pixels)

    def _posteriors(self, x):
        h, qs = x.flatten(1), []
        for block, head in zip(self.encoder, self.heads):
            h = block(h)
            qs.append(head.params(h))
        return qs

    def _logits(self, zs):
        t = None
        for l in reversed(range(len(zs))):
            t = self.generator[l](zs[l] if t is None else torch.cat([t, zs[l]], -1))
        return self.output(t)
