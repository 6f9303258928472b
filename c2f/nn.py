"""Shared building blocks: MLP and convolutional stacks, the Gaussian head, the pixel likelihoods."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, ContinuousBernoulli, Distribution, Independent, Normal, constraints

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class ImageConfig:
    """Mixin for the models' dataclass configs, which all have ``image_shape`` (C, H, W)."""

    image_shape: tuple[int, int, int]

    @property
    def pixels(self) -> int:
        """C·H·W, the number of values in one image."""
        return math.prod(self.image_shape)


def mlp(sizes: Sequence[int], activation: str = "relu", batch_norm: bool = False, last_activation: bool = False):
    """Linear layers of the given sizes, each but the last followed by (batch norm and) the activation."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            if batch_norm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Strided 4x4 convolutions that halve the image each layer, then a linear map to `out_features`."""

    def __init__(self, image_shape=(1, 28, 28), channels=(32, 64), out_features=256, activation="relu",
                 batch_norm=False):
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = []
        for ch in channels:
            layers += [nn.Conv2d(c, ch, 4, stride=2, padding=1)]
            layers += [nn.BatchNorm2d(ch)] if batch_norm else []
            layers += [ACTIVATIONS[activation]()]
            c, h, w = ch, h // 2, w // 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, out_features),
                                 ACTIVATIONS[activation]())

    def forward(self, x):
        return self.net(x)


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear map to a small feature map, then transposed convolutions
    that double it each layer, ending in `image_shape[0]` channels of unnormalised outputs (logits)."""

    def __init__(self, in_features, image_shape=(1, 28, 28), channels=(64, 32), activation="relu",
                 batch_norm=False):
        super().__init__()
        c_out, h, w = image_shape
        scale = 2 ** len(channels)
        self.start = (channels[0], math.ceil(h / scale), math.ceil(w / scale))
        layers: list[nn.Module] = [nn.Linear(in_features, math.prod(self.start)), ACTIVATIONS[activation]()]
        self.fc = nn.Sequential(*layers)
        ups: list[nn.Module] = []
        for a, b in zip(channels, list(channels[1:]) + [c_out]):
            ups.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
            if b != c_out:
                ups += [nn.BatchNorm2d(b)] if batch_norm else []
                ups.append(ACTIVATIONS[activation]())
        self.ups = nn.Sequential(*ups)
        self.image_shape = tuple(image_shape)

    def forward(self, z):
        out = self.ups(self.fc(z).view(-1, *self.start))
        h, w = self.image_shape[1:]
        return out[..., :h, :w]


LOGVAR_BOUND = 10.0  # the soft bound on log-variances (see :func:`bound_logvar`): (−10, 10), std in (0.007, 148)


def bound_logvar(logvar: torch.Tensor, bound: float | None = LOGVAR_BOUND) -> torch.Tensor:
    """The log-variance squashed softly into (−b, b), b·tanh(v / b) (about v near 0), or as it is without a
    bound: a network without batch norm can otherwise drive a variance to 0 or infinity."""
    return logvar if bound is None else bound * torch.tanh(logvar / bound)


class GaussianHead(nn.Module):
    """A linear map to the mean and log-variance of a diagonal Gaussian over `dim` variables.

    ``head(h)`` is the distribution q = N(mean, exp(logvar)) (an ``Independent`` over the last dimension);
    ``head.params(h)`` the raw (mean, log-variance) pair, for models that combine Gaussians by their
    parameters. With `logvar_bound` = b the log-variance is squashed softly into (−b, b) (:func:`bound_logvar`).
    Both are float32, also under bf16 autocast.
    """

    def __init__(self, in_features: int, dim: int, logvar_bound: float | None = None):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * dim)
        self.logvar_bound = logvar_bound

    def params(self, h) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.linear(h).float().chunk(2, dim=-1)
        return mean, bound_logvar(logvar, self.logvar_bound)

    def forward(self, h) -> Independent:
        return diag_gaussian(*self.params(h))


def diag_gaussian(mean: torch.Tensor, logvar: torch.Tensor) -> Independent:
    """A diagonal Gaussian over the last dimension, parameterised by its log-variance."""
    # no argument validation: a diverging run must reach the training loop's NaN guard, not fail here
    return Independent(Normal(mean, torch.exp(0.5 * logvar), validate_args=False), 1)


def standard_normal(shape, device=None) -> Independent:
    """The N(0, I) prior over vectors of the given shape (batch dims first, event dim last)."""
    zeros = torch.zeros(shape, device=device)
    return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1)


LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "discretized_logistic")


class DiscretizedLogistic(Distribution):
    """A logistic distribution over [0, 1] discretized into 256 bins of width 1/255, one per 8-bit grey level,
    with the two end bins taking the tails (Salimans et al. 2017, one mixture component). Its log-probability
    of an 8-bit image is a true log-probability mass, so −log p / (D ln 2) is an honest code length in
    bits per pixel. Expects x = k / 255."""

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.unit_interval
    half_bin = 0.5 / 255

    def __init__(self, loc, log_scale, validate_args=False):
        self.loc, self.log_scale = loc, log_scale.clamp(min=-7.0)
        super().__init__(loc.shape, validate_args=validate_args)

    def log_prob(self, x):
        centered, inv_s = x - self.loc, torch.exp(-self.log_scale)
        plus, minus = inv_s * (centered + self.half_bin), inv_s * (centered - self.half_bin)
        log_cdf_plus = plus - F.softplus(plus)  # log σ(plus): the bin of 0 takes the left tail
        log_survival_minus = -F.softplus(minus)  # log (1 − σ(minus)): the bin of 1 takes the right tail
        delta = torch.sigmoid(plus) - torch.sigmoid(minus)
        mid = inv_s * centered  # log density at the bin centre times its width, when the difference underflows
        log_mid = mid - self.log_scale - 2 * F.softplus(mid) - math.log(255)
        inner = torch.where(delta > 1e-5, delta.clamp_min(1e-12).log(), log_mid)
        return torch.where(x < self.half_bin, log_cdf_plus, torch.where(x > 1 - self.half_bin, log_survival_minus, inner))

    @property
    def mean(self):
        """The location clipped to [0, 1] (the mode of the discretized distribution, used as the image)."""
        return self.loc.clamp(0, 1)

    def sample(self, sample_shape=torch.Size()):
        u = torch.rand(self._extended_shape(sample_shape), device=self.loc.device).clamp(1e-6, 1 - 1e-6)
        x = self.loc + self.log_scale.exp() * (u.log() - (-u).log1p())
        return (x.clamp(0, 1) * 255).round() / 255


def likelihood_channels(kind: str) -> int:
    """Decoder output channels per image channel: 2 (location, log-scale) for the discretized logistic."""
    return 2 if kind == "discretized_logistic" else 1


def pixel_likelihood(logits: torch.Tensor, kind: str = "bernoulli") -> Independent:
    """The decoder's distribution over images from per-pixel outputs: ``bernoulli`` for binary data,
    ``continuous_bernoulli`` for grey levels in [0, 1] (a density), ``discretized_logistic`` for 8-bit grey
    levels (a probability mass; `logits` then has 2C channels, location then log-scale). Summed over
    channels and pixels, in float32."""
    logits = logits.float()
    if kind == "bernoulli":
        return Independent(Bernoulli(logits=logits, validate_args=False), 3)
    if kind == "continuous_bernoulli":
        return Independent(ContinuousBernoulli(logits=logits, validate_args=False), 3)
    if kind == "discretized_logistic":
        loc, log_scale = logits.chunk(2, dim=-3)
        return Independent(DiscretizedLogistic(loc, log_scale), 3)
    raise ValueError(f"unknown pixel likelihood {kind!r}; choose one of {LIKELIHOODS}")
