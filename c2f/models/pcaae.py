"""PCA-AE (Ladjal, Newson & Pham 2019; Pham, Ladjal & Newson 2022): a deterministic autoencoder whose
latents are added one at a time.

Stage k trains a new encoder E_k (one latent, batch-normalised without affine parameters, so it has zero
mean and unit variance over a batch) and a new decoder D_k that reads the concatenation (z_1..z_k), while
E_1..E_{k−1} stay frozen. The loss is the squared error of the reconstruction plus a penalty on the batch
covariance between the new latent and each earlier one,

    L_k = ||D_k(z_1..z_k) − x||² + λ_cov · 1/(k−1) Σ_{i<k} (mean_b z_{b,i} z_{b,k})².

Each earlier decoder is kept (decoder k is the one to use with k latents), so reconstruction error can be
reported for every number of latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from c2f.nn import ImageConfig, mlp


@dataclass
class PCAAEConfig(ImageConfig):
    latents: int = 10
    hidden: tuple[int, ...] = (256,)  # encoder MLP widths (each encoder); decoders mirror them
    activation: str = "relu"
    cov_weight: float = 1.0  # λ_cov
    image_shape: tuple[int, int, int] = (1, 28, 28)


def covariance_penalty(z: torch.Tensor) -> torch.Tensor:
    """Mean over earlier latents i < k of the squared batch covariance (mean_b z_i z_k)² between the last
    latent k and each earlier one; z is [B, k] and already centred and scaled (0 for k = 1)."""
    k = z.shape[-1]
    if k < 2:
        return z.new_zeros(())
    cov = (z[:, :-1] * z[:, -1:]).mean(0)
    return (cov ** 2).mean()


class PCAAE(nn.Module):
    """Progressively trained deterministic autoencoder; ``set_stage(k)`` selects the stage to train."""

    def __init__(self, cfg: PCAAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleList(
            nn.Sequential(nn.Flatten(), mlp([cfg.pixels, *cfg.hidden, 1], cfg.activation),
                          nn.BatchNorm1d(1, affine=False)) for _ in range(cfg.latents))
        self.decoders = nn.ModuleList(
            nn.Sequential(mlp([k, *reversed(cfg.hidden), cfg.pixels], cfg.activation),
                          nn.Unflatten(-1, cfg.image_shape))
            for k in range(1, cfg.latents + 1))
        self.stage = cfg.latents

    @property
    def num_stages(self) -> int:
        return self.cfg.latents

    def set_stage(self, stage: int) -> "PCAAE":
        """Train encoder and decoder `stage` only; the earlier encoders are frozen (and kept in eval mode, so
        their batch-norm statistics no longer move); the earlier decoders are left as they are."""
        if not 1 <= stage <= self.cfg.latents:
            raise ValueError(f"stage must be in 1..{self.cfg.latents}, got {stage}")
        self.stage = stage
        for i in range(self.cfg.latents):
            self.encoders[i].requires_grad_(i == stage - 1)
            self.decoders[i].requires_grad_(i == stage - 1)
        return self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for i in range(self.stage - 1):
            self.encoders[i].eval()
        return self

    def encode(self, x, k: int | None = None) -> torch.Tensor:
        """The first k latents [B, k] (all by default)."""
        k = self.cfg.latents if k is None else k
        return torch.cat([self.encoders[i](x) for i in range(k)], -1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] from the first k latents with decoder k (k = z.shape[-1])."""
        return torch.sigmoid(self.decoders[z.shape[-1] - 1](z))

    @torch.no_grad()
    def reconstruct(self, x, k: int | None = None):
        return self.decode(self.encode(x, k))

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Stage loss: squared error per image plus λ_cov times the covariance penalty (the KL arguments of
        the training loop's interface are ignored: there is no KL)."""
        z = self.encode(x, self.stage)
        recon = ((self.decode(z) - x) ** 2).flatten(1).sum(-1).mean()
        cov = covariance_penalty(z)
        return recon + self.cfg.cov_weight * cov, {"recon": recon, "cov": cov}

    @torch.no_grad()
    def reconstruction_errors(self, x) -> torch.Tensor:
        """Mean squared error per image (summed over pixels) with k = 1..K latents: shape [K]."""
        was = self.training
        self.eval()
        z = self.encode(x)
        errs = torch.stack([((self.decode(z[:, :k]) - x) ** 2).flatten(1).sum(-1).mean()
                            for k in range(1, self.cfg.latents + 1)])
        self.train(was)
        return errs


@torch.no_grad()
def pca_reconstruction_errors(train_x: torch.Tensor, test_x: torch.Tensor, components: int) -> torch.Tensor:
    """Linear PCA fitted on `train_x`: mean squared error per test image (summed over pixels) when it is
    reconstructed from its first k principal components, k = 1..`components`: shape [components]."""
    a, b = train_x.flatten(1).double(), test_x.flatten(1).double()
    mean = a.mean(0)
    _, _, v = torch.linalg.svd(a - mean, full_matrices=False)
    centred = b - mean
    errs = []
    for k in range(1, components + 1):
        basis = v[:k]
        recon = centred @ basis.T @ basis
        errs.append(((centred - recon) ** 2).sum(-1).mean())
    return torch.stack(errs).float()
