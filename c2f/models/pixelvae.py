"""PixelCNN (van den Oord et al. 2016) and PixelVAE (Gulrajani et al. 2016): a VAE whose decoder is a short
autoregressive PixelCNN,

    p(x | z) = ∏_i p(x_i | x_<i, z),   p(z) = N(0, I),   q(z | x) = N(μ(x), σ²(x)),

with per-pixel Bernoulli conditionals (binary images). The decoder is a stack of *gated* layers
y = tanh(W_f * x + V_f z) ⊙ σ(W_g * x + V_g z) in two streams, vertical and horizontal, so that the
receptive field has no blind spot: the output at pixel i sees pixels < i (raster order) and never i or later.
The first layer excludes the current pixel (mask A), later layers may include their own position (mask B).

z enters the decoder in one of two ways (the paper's MNIST variants):
* ``"bias"`` (without upsampling; the official code's ``cond_z_bias``): a linear map of z is added to the
  pre-activations of every gated layer, a per-channel bias shared by all positions;
* ``"upsample"``: z is decoded by the conv VAE's transposed convolutions to a feature map s(z) of the image's
  size, concatenated with the image at the input of the first layer (the paper's variant: the mask-A layer
  then hides pixel i's own entry of s(z), which needs no mask since s(z) depends on z alone);
* ``"map"``: the same map s(z), added to the pre-activations of *every* gated layer (both stacks) through an
  unmasked 1 × 1 convolution, together with the per-layer bias of ``"bias"``; only the image enters the
  mask-A layer (benchmarks/pixelvae_z_use.md).

``latent_dim = 0`` gives the z-free PixelCNN (an exact likelihood); ``layers = 0`` with upsampling gives a
factorised conv decoder (a conv VAE). Training uses teacher forcing (the true image is the decoder's input);
sampling draws the pixels one at a time for a whole batch. :class:`HierarchicalPixelVAE` adds a second
latent level, p(z_2) p(z_1 | z_2) p(x | z_1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import kl_divergence

from c2f.nn import ConvDecoder, ConvEncoder, GaussianHead, ImageConfig, mlp, pixel_likelihood, standard_normal
from c2f.objectives import CodeOrder, ElboTerms, negative_elbo, units_by_kl

CONDITIONINGS = ("bias", "upsample", "map")


def _gate(h: torch.Tensor) -> torch.Tensor:
    """tanh(a) ⊙ σ(b) for h = [a, b] split along channels."""
    a, b = h.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class Gate(nn.Module):
    """The gated activation as a module."""

    def forward(self, h):
        return _gate(h)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move a feature map one row down (zeros in the top row): position (r, c) then sees row r − 1."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """Move a feature map one column right (zeros in the left column)."""
    return F.pad(x, (1, 0))[..., :-1]


class GatedLayer(nn.Module):
    """One gated PixelCNN layer with a vertical and a horizontal stack (van den Oord et al. 2016b).

    The vertical stack at (r, c) sees rows ≤ r of its input (a (k//2+1) × k convolution, padded above); it
    reaches the horizontal stack shifted one row down, so that row r only sees rows < r through it. The
    horizontal stack at (r, c) sees columns ≤ c of its own row (a 1 × (k//2+1) convolution, padded on the
    left); in the first layer (``mask_a``) its input is shifted one column right, which excludes the current
    pixel. Both stacks are gated; the horizontal one has a 1 × 1 output convolution and, after the first
    layer, a residual connection. `cond_dim` > 0 adds a linear map of a vector z to every pre-activation;
    `map_channels` > 0 adds a 1 × 1 convolution of a map of z [B, map_channels, H, W] (unmasked: the map at
    a position depends on z alone).
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int, mask_a: bool, cond_dim: int = 0,
                 map_channels: int = 0):
        super().__init__()
        if kernel_size < 2:
            raise ValueError(f"kernel_size must be at least 2, got {kernel_size}")
        self.mask_a, n = mask_a, kernel_size // 2
        self.pad_v = (n, n, n, 0)  # left, right, top, bottom
        self.pad_h = (n, 0, 0, 0)
        self.v_conv = nn.Conv2d(in_channels, 2 * channels, (n + 1, 2 * n + 1))
        self.h_conv = nn.Conv2d(in_channels, 2 * channels, (1, n + 1))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.h_out = nn.Conv2d(channels, channels, 1)
        self.residual = not mask_a and in_channels == channels
        self.cond_v = nn.Linear(cond_dim, 2 * channels, bias=False) if cond_dim else None
        self.cond_h = nn.Linear(cond_dim, 2 * channels, bias=False) if cond_dim else None
        self.map_v = nn.Conv2d(map_channels, 2 * channels, 1, bias=False) if map_channels else None
        self.map_h = nn.Conv2d(map_channels, 2 * channels, 1, bias=False) if map_channels else None

    def forward(self, v, h, z=None, zmap=None):
        v_pre = self.v_conv(F.pad(v, self.pad_v))
        if self.cond_v is not None:
            v_pre = v_pre + self.cond_v(z)[:, :, None, None]
        if self.map_v is not None:
            v_pre = v_pre + self.map_v(zmap)
        h_in = shift_right(h) if self.mask_a else h
        h_pre = self.h_conv(F.pad(h_in, self.pad_h)) + self.v_to_h(shift_down(v_pre))
        if self.cond_h is not None:
            h_pre = h_pre + self.cond_h(z)[:, :, None, None]
        if self.map_h is not None:
            h_pre = h_pre + self.map_h(zmap)
        h_new = self.h_out(_gate(h_pre))
        return _gate(v_pre), h_new + h if self.residual else h_new


@dataclass
class PixelVAEConfig(ImageConfig):
    latent_dim: int = 16  # 0: no latent, the model is a PixelCNN
    layers: int = 4  # gated PixelCNN layers in the decoder (0 only with upsampling: a factorised decoder)
    channels: int = 32  # feature maps of each gated layer
    kernel_size: int = 5  # the first layer uses kernel_size + 2, as the official code's 7 × 7 input layer
    conditioning: str = "bias"  # "bias" (without upsampling) | "upsample" (concatenated) | "map" (every layer)
    up_channels: int = 16  # feature maps of z's upsampled map ("upsample" only)
    enc_channels: tuple[int, ...] = (32, 64)  # conv encoder of chapter 01; the upsampling decoder mirrors it
    conv_features: int = 256
    activation: str = "relu"
    image_shape: tuple[int, int, int] = (1, 28, 28)


class PixelCNNDecoder(nn.Module):
    """The autoregressive decoder: logits [B, C, H, W] of p(x_i | x_<i, z) for every pixel at once."""

    def __init__(self, cfg: PixelVAEConfig, cond_dim: int):
        super().__init__()
        c = cfg.image_shape[0]
        if c != 1:
            raise ValueError("the PixelCNN here models one channel (binary images); image_shape must be (1, H, W)")
        if cfg.conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {cfg.conditioning!r}; choose one of {CONDITIONINGS}")
        if cfg.layers < 0 or (cfg.layers == 0 and not (cond_dim and cfg.conditioning == "upsample")):
            raise ValueError("layers must be ≥ 1 (0 is allowed only for a PixelVAE with upsampling)")
        self.cfg = cfg
        self.bias_dim = cond_dim if cfg.conditioning in ("bias", "map") else 0
        self.map_dim = cfg.up_channels if cond_dim and cfg.conditioning == "map" else 0
        self.upsample = None
        in_channels = c
        if cond_dim and cfg.conditioning in ("upsample", "map"):
            self.upsample = nn.Sequential(
                mlp([cond_dim, cfg.conv_features], cfg.activation, last_activation=True),
                ConvDecoder(cfg.conv_features, (cfg.up_channels, *cfg.image_shape[1:]),
                            tuple(reversed(cfg.enc_channels)), cfg.activation))
            in_channels += 0 if self.map_dim else cfg.up_channels
        self.layers = nn.ModuleList(
            GatedLayer(in_channels if i == 0 else cfg.channels, cfg.channels,
                       cfg.kernel_size + 2 if i == 0 else cfg.kernel_size, mask_a=i == 0, cond_dim=self.bias_dim,
                       map_channels=self.map_dim)
            for i in range(cfg.layers))
        head_in = cfg.channels if cfg.layers else cfg.up_channels
        self.head = nn.Sequential(nn.Conv2d(head_in, 2 * cfg.channels, 1), Gate(),  # the official code's output
                                  nn.Conv2d(cfg.channels, 2 * cfg.channels, 1), Gate(), nn.Conv2d(cfg.channels, c, 1))

    def features(self, z):
        """What z contributes: the vector itself, its upsampled feature map, or both (``"map"``: a pair; None
        for a PixelCNN)."""
        if z is None:
            return None
        if self.map_dim:
            return z, self.upsample(z)
        return self.upsample(z) if self.upsample is not None else z

    def forward(self, x, cond=None, top: int = 0):
        """Logits for every pixel given the image x (teacher forcing) and `cond` = :meth:`features` (z).

        x may be cut to rows top, top + 1, … of the image (a map `cond` is cut to match): the logits of row r
        only depend on rows r − :func:`receptive_field_rows` … r, which sampling uses to compute only those."""
        rows = slice(top, top + x.shape[2])
        if self.map_dim:
            z, zmap = cond
            v = h = x
            for layer in self.layers:
                v, h = layer(v, h, z, zmap[:, :, rows])
            return self.head(h)
        if self.upsample is not None:
            up = cond[:, :, rows]
            if not self.layers:  # a factorised conv decoder
                return self.head(up)
            x, cond = torch.cat([x, up], dim=1), None
        v = h = x
        for layer in self.layers:
            v, h = layer(v, h, cond)
        return self.head(h)

    @torch.no_grad()
    def sample(self, cond, n: int, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draw n binary images pixel by pixel (H·W steps, the whole batch at once): pixel i is
        1[u_i < p(x_i = 1 | x_<i, z)] with u uniform noise, fixed when `noise` [n, 1, H, W] is given. Each
        step computes only the rows the pixel's conditional sees (:func:`receptive_field_rows`), plus one."""
        device = self.head[-1].weight.device
        _, height, width = self.cfg.image_shape
        x = torch.zeros(n, 1, height, width, device=device)
        u = torch.rand_like(x) if noise is None else noise.to(device)
        above = receptive_field_rows(self.cfg.layers, self.cfg.kernel_size) + 1
        for r in range(height):
            top = max(0, r - above) if self.cfg.layers else r  # a factorised decoder: row r alone
            for c in range(width):
                p = torch.sigmoid(self(x[:, :, top:r + 1], cond, top)[:, :, -1, c].float())
                x[:, :, r, c] = (u[:, :, r, c] < p).float()
        return x


class PixelVAE(nn.Module):
    """q(z|x) the conv encoder of chapter 01, p(z) = N(0, I), p(x|z) a gated PixelCNN conditioned on z.
    With ``latent_dim = 0``: the PixelCNN p(x) = ∏_i p(x_i | x_<i), exact likelihood and KL 0."""

    def __init__(self, cfg: PixelVAEConfig):
        super().__init__()
        if cfg.latent_dim < 0:
            raise ValueError(f"latent_dim must be ≥ 0, got {cfg.latent_dim}")
        self.cfg = cfg
        self.decoder = PixelCNNDecoder(cfg, cfg.latent_dim)
        if cfg.latent_dim:
            self.encoder = ConvEncoder(cfg.image_shape, cfg.enc_channels, cfg.conv_features, cfg.activation)
            self.posterior_head = GaussianHead(cfg.conv_features, cfg.latent_dim)

    @property
    def device(self):
        return self.decoder.head[-1].weight.device

    # --- the model's distributions -------------------------------------------------------------------
    def encode(self, x):
        """q(z | x)."""
        return self.posterior_head(self.encoder(x))

    def prior(self, n: int = 1):
        return standard_normal((n, self.cfg.latent_dim), device=self.device)

    def decode(self, x, z):
        """p(x | z) with teacher forcing; z may carry extra leading sample dimensions [..., B, D]."""
        lead = z.shape[:-2] if z is not None else ()
        if z is not None and lead:
            x = x.expand(*lead, *x.shape).reshape(-1, *x.shape[1:])
            z = z.reshape(-1, z.shape[-1])
        logits = self.decoder(x, self.decoder.features(z))
        return pixel_likelihood(logits.view(*lead, -1, *self.cfg.image_shape))

    # --- objectives ----------------------------------------------------------------------------------
    def elbo_terms(self, x):
        """Per-example reconstruction log-likelihood, KL per latent dimension and their sum (one z sample).
        For the PixelCNN, log_px is the exact log-likelihood and the KL is 0."""
        if not self.cfg.latent_dim:
            log_px = self.decode(x, None).log_prob(x)
            return ElboTerms(log_px, x.new_zeros(x.shape[0], 0))
        q = self.encode(x)
        log_px = self.decode(x, q.rsample()).log_prob(x)
        kl_dims = kl_divergence(q.base_dist, self.prior(x.shape[0]).base_dist)
        return ElboTerms(log_px, kl_dims)

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """The negative ELBO averaged over the batch, the KL weighted (warm-up) and optionally free bits."""
        return negative_elbo(self.elbo_terms(x), kl_weight, free_bits)

    def log_importance_weights(self, x, k: int):
        """log p(x, z_i) − log q(z_i | x) for k samples z_i ~ q(z | x): shape [k, B] (k copies of the
        exact log p(x) for the PixelCNN)."""
        if not self.cfg.latent_dim:
            return self.decode(x, None).log_prob(x).expand(k, -1)
        q = self.encode(x)
        z = q.sample((k,))
        return self.decode(x, z).log_prob(x) + self.prior(x.shape[0]).log_prob(z) - q.log_prob(z)

    def code_order(self, kl_per_dim) -> CodeOrder:
        """No order of its own: the units by KL (:func:`c2f.objectives.units_by_kl`); the PixelCNN decoder
        adds the rest."""
        def decode_sample(x, z, image):  # the image: drawn pixel by pixel (the decoder has no tractable mean)
            return self.decode(x, z).log_prob(x), (self.generate(z) if image else None)
        return units_by_kl(kl_per_dim, lambda x: self.encode(x).mean, lambda x, z: self.decode(x, z).log_prob(x),
                           lambda x: self.encode(x).sample(), decode_sample, pixel_by_pixel=True)

    def latent_means(self, x):
        """E_q[z | x] (an empty [B, 0] for the PixelCNN)."""
        return self.encode(x).mean if self.cfg.latent_dim else x.new_zeros(x.shape[0], 0)

    # --- images --------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z, noise=None):
        """Binary images drawn pixel by pixel from p(x | z) for given latents [n, D]; `noise` fixes the
        uniforms that decide each pixel (see :meth:`PixelCNNDecoder.sample`)."""
        return self.decoder.sample(self.decoder.features(z), z.shape[0], noise)

    @torch.no_grad()
    def sample(self, n: int, noise=None):
        """n binary images from the model (z ~ p(z), then the pixels)."""
        if not self.cfg.latent_dim:
            return self.decoder.sample(None, n, noise)
        return self.generate(self.prior(n).sample(), noise)

    @torch.no_grad()
    def reconstruct(self, x, noise=None):
        """Pixels redrawn from p(x | z) at the posterior mean z of each image."""
        return self.generate(self.encode(x).mean, noise)


@dataclass
class HierarchicalPixelVAEConfig(ImageConfig):
    latent_dims: tuple[int, int] = (16, 8)  # z_1 (read by the PixelCNN), z_2 (top)
    hidden: int = 128  # width of the MLPs of p(z_1 | z_2) and q(z_2 | x)
    decoder: PixelVAEConfig = field(default_factory=PixelVAEConfig)  # p(x | z_1); latent_dim is z_1's

    def __post_init__(self):
        if len(self.latent_dims) != 2 or min(self.latent_dims) < 1:
            raise ValueError(f"latent_dims must be two positive sizes (z_1, z_2), got {self.latent_dims}")
        self.decoder = replace(self.decoder, latent_dim=self.latent_dims[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The decoder's image shape (the model has one)."""
        return self.decoder.image_shape


class HierarchicalPixelVAE(nn.Module):
    """A two-level PixelVAE: p(z_2) = N(0, I), p(z_1 | z_2) a diagonal Gaussian (an MLP of z_2; the paper
    uses a PixelCNN over spatial z_1 with Gaussian outputs), p(x | z_1) the gated PixelCNN of
    :class:`PixelVAE`. Inference bottom-up from one conv feature vector h(x): q(z_1 | x) a linear head,
    q(z_2 | x) an MLP on h. The ELBO is E_q[log p(x|z_1)] − KL(q(z_1|x) ‖ p(z_1|z_2)) − KL(q(z_2|x) ‖ p(z_2)),
    the first KL in closed form given the sample of z_2."""

    def __init__(self, cfg: HierarchicalPixelVAEConfig):
        super().__init__()
        self.cfg = cfg
        d1, d2 = cfg.latent_dims
        dec = cfg.decoder
        self.layer_sizes = (d1, d2)
        self.encoder = ConvEncoder(dec.image_shape, dec.enc_channels, dec.conv_features, dec.activation)
        self.q1 = GaussianHead(dec.conv_features, d1)
        self.q2 = nn.Sequential(mlp([dec.conv_features, cfg.hidden], dec.activation, last_activation=True),
                                GaussianHead(cfg.hidden, d2))
        self.p1 = nn.Sequential(mlp([d2, cfg.hidden], dec.activation, last_activation=True),
                                GaussianHead(cfg.hidden, d1))
        self.decoder = PixelCNNDecoder(dec, d1)

    @property
    def device(self):
        return self.decoder.head[-1].weight.device

    def encode(self, x):
        """q(z_1 | x), q(z_2 | x)."""
        h = self.encoder(x)
        return self.q1(h), self.q2(h)

    def decode(self, x, z1):
        """p(x | z_1) with teacher forcing; z_1 may have leading sample dimensions."""
        lead = z1.shape[:-2]
        xs = x.expand(*lead, *x.shape).reshape(-1, *x.shape[1:])
        logits = self.decoder(xs, self.decoder.features(z1.reshape(-1, z1.shape[-1])))
        return pixel_likelihood(logits.view(*lead, -1, *x.shape[1:]))

    def elbo_terms(self, x):
        q1, q2 = self.encode(x)
        z1, z2 = q1.rsample(), q2.rsample()
        log_px = self.decode(x, z1).log_prob(x)
        kl1 = kl_divergence(q1.base_dist, self.p1(z2).base_dist)
        kl2 = kl_divergence(q2.base_dist, standard_normal(z2.shape, x.device).base_dist)
        kl_dims = torch.cat([kl1, kl2], dim=-1)
        return ElboTerms(log_px, kl_dims)

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """The negative ELBO, as the one-layer model's, and the KL of each latent layer."""
        t = self.elbo_terms(x)
        d1 = self.layer_sizes[0]
        loss, scalars = negative_elbo(t, kl_weight, free_bits)
        return loss, {**scalars, "kl_1": t.kl_dims[:, :d1].sum(-1).mean(), "kl_2": t.kl_dims[:, d1:].sum(-1).mean()}

    def log_importance_weights(self, x, k: int):
        """log p(x|z_1) + log p(z_1|z_2) + log p(z_2) − log q(z_1|x) − log q(z_2|x), z ~ q: shape [k, B]."""
        q1, q2 = self.encode(x)
        z1, z2 = q1.sample((k,)), q2.sample((k,))
        log_prior = self.p1(z2).log_prob(z1) + standard_normal(z2.shape, x.device).log_prob(z2)
        return self.decode(x, z1).log_prob(x) + log_prior - q1.log_prob(z1) - q2.log_prob(z2)

    def latent_means(self, x):
        q1, q2 = self.encode(x)
        return torch.cat([q1.mean, q2.mean], dim=-1)

    @torch.no_grad()
    def generate(self, z1, noise=None):
        """Binary images drawn pixel by pixel from p(x | z_1)."""
        return self.decoder.sample(self.decoder.features(z1), z1.shape[0], noise)

    @torch.no_grad()
    def sample(self, n: int, noise=None):
        z2 = standard_normal((n, self.layer_sizes[1]), self.device).sample()
        return self.generate(self.p1(z2).sample(), noise)

    @torch.no_grad()
    def resample(self, x, level: str, noise=None):
        """Redraw one level of the model for the images x, keeping the levels above at their posterior
        means: ``"z2"`` draws z_2 ~ p(z_2), then z_1 ~ p(z_1 | z_2) and the pixels; ``"z1"`` keeps z_2, draws
        z_1 ~ p(z_1 | z_2) and the pixels; ``"pixels"`` keeps z_1 and z_2 and redraws only the pixels."""
        q1, q2 = self.encode(x)
        if level == "pixels":
            return self.generate(q1.mean, noise)
        z2 = q2.mean if level == "z1" else standard_normal(q2.mean.shape, self.device).sample()
        if level not in ("z1", "z2"):
            raise ValueError(f"unknown level {level!r}; choose 'z2', 'z1' or 'pixels'")
        return self.generate(self.p1(z2).sample(), noise)


def timed_sample(model, n: int, noise=None) -> tuple[torch.Tensor, float]:
    """n images from ``model.sample`` drawn as one batch, and the seconds per image it took (on the model's
    device, synchronised on a GPU)."""
    cuda = next(model.parameters()).device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    images = model.sample(n) if noise is None else model.sample(n, noise)
    if cuda:
        torch.cuda.synchronize()
    return images, (time.perf_counter() - start) / n


def receptive_field_rows(layers: int, kernel_size: int) -> int:
    """How many rows above a pixel its conditional sees: 1 + (k+2)//2 through the first layer's vertical
    stack, k//2 more for each further layer (0 without layers)."""
    return 0 if layers == 0 else 1 + (kernel_size + 2) // 2 + (layers - 1) * (kernel_size // 2)
