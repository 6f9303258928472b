"""The variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014) with an MLP or conv backbone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import kl_divergence

from c2f.nn import ConvDecoder, ConvEncoder, GaussianHead, ImageConfig, mlp, pixel_likelihood, standard_normal
from c2f.objectives import CodeOrder, ElboTerms, negative_elbo, units_by_kl


@dataclass
class VAEConfig(ImageConfig):
    arch: str = "mlp"  # "mlp" or "conv"
    latent_dim: int = 32
    hidden: tuple[int, ...] = (512, 256)  # MLP encoder widths; the decoder mirrors them
    channels: tuple[int, ...] = (32, 64)  # conv encoder channels; the decoder mirrors them
    conv_features: int = 256  # width of the dense layer between conv stack and latents
    activation: str = "relu"
    batch_norm: bool = False
    likelihood: str = "bernoulli"  # or "continuous_bernoulli" for grey levels
    image_shape: tuple[int, int, int] = (1, 28, 28)


class VAE(nn.Module):
    """q(z|x) a diagonal Gaussian, p(z) = N(0, I), p(x|z) a factorised Bernoulli over pixels."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        d, pixels = cfg.latent_dim, cfg.pixels
        if cfg.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), mlp([pixels, *cfg.hidden], cfg.activation,
                                                           cfg.batch_norm, last_activation=True))
            self.decoder = nn.Sequential(mlp([d, *reversed(cfg.hidden), pixels], cfg.activation, cfg.batch_norm),
                                         nn.Unflatten(-1, cfg.image_shape))
            features = cfg.hidden[-1]
        elif cfg.arch == "conv":
            self.encoder = ConvEncoder(cfg.image_shape, cfg.channels, cfg.conv_features, cfg.activation,
                                       cfg.batch_norm)
            self.decoder = nn.Sequential(mlp([d, cfg.conv_features], cfg.activation, last_activation=True),
                                         ConvDecoder(cfg.conv_features, cfg.image_shape,
                                                     tuple(reversed(cfg.channels)), cfg.activation,
                                                     cfg.batch_norm))
            features = cfg.conv_features
        else:
            raise ValueError(f"unknown VAE arch {cfg.arch!r}; choose 'mlp' or 'conv'")
        self.posterior_head = GaussianHead(features, d)

    # --- the model's distributions -------------------------------------------------------------------
    def encode(self, x):
        """q(z | x)."""
        return self.posterior_head(self.encoder(x))

    def decode(self, z):
        """p(x | z); z may carry extra leading sample dimensions."""
        logits = self.decoder(z.reshape(-1, z.shape[-1]))
        return pixel_likelihood(logits.view(*z.shape[:-1], *self.cfg.image_shape), self.cfg.likelihood)

    def prior(self, n: int = 1):
        return standard_normal((n, self.cfg.latent_dim), device=self.posterior_head.linear.weight.device)

    # --- objectives ----------------------------------------------------------------------------------
    def elbo_terms(self, x) -> ElboTerms:
        """Per-example reconstruction log-likelihood and KL per latent dimension (one z sample)."""
        q = self.encode(x)
        z = q.rsample()
        log_px = self.decode(z).log_prob(x)
        p = self.prior(x.shape[0])
        kl_dims = kl_divergence(q.base_dist, p.base_dist)  # [B, D], closed form
        return ElboTerms(log_px, kl_dims)

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """The negative ELBO averaged over the batch (with optional KL weight and free bits per dimension)."""
        return negative_elbo(self.elbo_terms(x), kl_weight, free_bits)

    def log_importance_weights(self, x, k: int):
        """log p(x, z_i) - log q(z_i | x) for k samples z_i ~ q(z | x): shape [k, B]."""
        q = self.encode(x)
        z = q.sample((k,))
        return self.decode(z).log_prob(x) + self.prior(x.shape[0]).log_prob(z) - q.log_prob(z)

    @property
    def layer_sizes(self) -> tuple[int]:
        """One latent layer of ``latent_dim`` units (so per-layer reports treat it like a hierarchy)."""
        return (self.cfg.latent_dim,)

    def code_order(self, kl_per_dim) -> CodeOrder:
        """No order of its own: the units by KL (:func:`c2f.objectives.units_by_kl`)."""
        def decode_sample(x, z, image):
            p = self.decode(z)
            return p.log_prob(x), (p.mean if image else None)
        return units_by_kl(kl_per_dim, lambda x: self.encode(x).mean, lambda x, z: self.decode(z).log_prob(x),
                           lambda x: self.encode(x).sample(), decode_sample)

    def latent_means(self, x):
        """E_q[z | x], used for active units and latent plots."""
        return self.encode(x).mean

    # --- images --------------------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x):
        """Pixel probabilities of p(x | z) at the posterior mean."""
        return self.decode(self.encode(x).mean).mean

    @torch.no_grad()
    def generate(self, z):
        """Pixel probabilities of p(x | z) for given latents."""
        return self.decode(z).mean

    @torch.no_grad()
    def sample(self, n: int):
        """Pixel probabilities for n draws z ~ p(z)."""
        return self.generate(self.prior(n).sample())
