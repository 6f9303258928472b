"""The discrete VAE (D-VAE) and the D-VAE with a spatial transformer (D-VAE-ST).

D-VAE: z ~ Cat(1/K), x | z ~ Bernoulli(prototype_z). The decoder is a table of K prototype images, so the
model must explain every image with one of K prototypes. D-VAE-ST: a continuous affine transformation
t ~ N(identity, σ₀² I) ∈ R⁶ warps the prototype with a spatial transformer (Jaderberg et al. 2015),
x | z, t ~ Bernoulli(ST(prototype_z, t)). q(z | x) is a categorical encoder trained with any estimator of
:mod:`c2f.estimators`; q(t | x) a diagonal Gaussian from a localisation network, reparameterised.

Because z takes only K values, the reconstruction term, the ELBO and log p(x) are computed by enumerating
z at evaluation time (exactly for the D-VAE; with z summed out and t importance-sampled for the D-VAE-ST).
Decoding is linear in the code: a one-hot, relaxed or enumerated code z gives the pixel probabilities
Σ_k z_k ST(prototype_k, t), with all K prototypes warped by the same t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, kl_divergence

from c2f.estimators import Concrete, make_estimator
from c2f.nn import ConvEncoder, GaussianHead, ImageConfig, diag_gaussian, mlp, pixel_likelihood
from c2f.objectives import CodeOrder, ElboTerms, kl_penalty

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
AFFINE_DIM = len(IDENTITY)  # t: the 2 × 3 matrix of an affine map, flattened
EPS = 1e-4  # pixel probabilities are kept in [EPS, 1 - EPS]


@dataclass
class DVAEConfig(ImageConfig):
    num_classes: int = 10  # K; larger than the number of classes for overclustering
    estimator: str = "exact"  # exact | reinforce | nvil | concrete | rebar | relax
    transform: bool = False  # True: D-VAE-ST
    arch: str = "mlp"  # encoder and localisation network: "mlp" or "conv"
    hidden: tuple[int, ...] = (400, 400)  # MLP widths
    channels: tuple[int, ...] = (32, 64)  # conv channels
    conv_features: int = 256
    likelihood: str = "bernoulli"  # or "continuous_bernoulli"
    transform_prior_std: float = 0.1  # σ₀ of the prior on each of the six affine parameters
    temperature: float = 0.5  # CONCRETE's fixed λ₁; the initial temperature of REBAR and RELAX
    prior_temperature: float = 1.0  # λ₂ of the relaxed prior (CONCRETE with relaxed_kl)
    relaxed_kl: bool = False  # CONCRETE only: train with the single-sample relaxed KL instead of the exact one
    straight_through: bool = False  # CONCRETE only: straight-through (hard forward, relaxed backward)
    decoder_hidden: tuple[int, ...] = (800,)  # the prototype network: one-hot code -> hidden -> pixel logits
    baseline_hidden: tuple[int, ...] = (400,)  # NVIL's baseline network and RELAX's surrogate network
    prototype_init: str = "data"  # "data": k-means++ seeding from the first training batch; "random"
    marginal_weight: float = 0.0  # weight of KL(batch-mean q(z|x) ‖ uniform): a regulariser outside the ELBO
    image_shape: tuple[int, int, int] = (1, 28, 28)


def uniform_kl(q_bar: torch.Tensor) -> torch.Tensor:
    """KL(q̄ ‖ Cat(1/K)) of class probabilities q̄ [K]: the batch-marginal term that keeps the classes in use."""
    return math.log(q_bar.shape[-1]) + (q_bar * q_bar.clamp_min(1e-12).log()).sum()


def _features(cfg: DVAEConfig) -> tuple[nn.Module, int]:
    if cfg.arch == "mlp":
        return nn.Sequential(nn.Flatten(), mlp([cfg.pixels, *cfg.hidden], last_activation=True)), cfg.hidden[-1]
    if cfg.arch == "conv":
        return ConvEncoder(cfg.image_shape, cfg.channels, cfg.conv_features), cfg.conv_features
    raise ValueError(f"unknown D-VAE arch {cfg.arch!r}; choose 'mlp' or 'conv'")


class DVAE(nn.Module):
    """D-VAE (``cfg.transform=False``) or D-VAE-ST (``cfg.transform=True``)."""

    def __init__(self, cfg: DVAEConfig):
        super().__init__()
        self.cfg = cfg
        k = cfg.num_classes
        self.encoder, features = _features(cfg)
        self.class_head = nn.Linear(features, k)
        # prototype logits = offset (a buffer: zero, or data images after k-means++ seeding) + net(one-hot)
        self.prototype_net = mlp([k, *cfg.decoder_hidden, cfg.pixels])
        self.register_buffer("prototype_offset", torch.zeros(k, *cfg.image_shape))
        self.register_buffer("prototypes_initialised", torch.tensor(cfg.prototype_init != "data"))
        if cfg.prototype_init == "data":  # start from the seeded images exactly
            nn.init.zeros_(self.prototype_net[-1].weight)
            nn.init.zeros_(self.prototype_net[-1].bias)
        elif cfg.prototype_init != "random":
            raise ValueError(f"unknown prototype_init {cfg.prototype_init!r}; choose 'data' or 'random'")
        if cfg.transform:
            self.localiser, features = _features(cfg)
            self.transform_head = GaussianHead(features, AFFINE_DIM)
            nn.init.zeros_(self.transform_head.linear.weight)  # q(t | x) = p(t) at initialisation
            with torch.no_grad():
                log_var = 2 * math.log(cfg.transform_prior_std)
                self.transform_head.linear.bias.copy_(torch.tensor([*IDENTITY, *[log_var] * AFFINE_DIM]))
        self.estimator = make_estimator(
            cfg.estimator, k, context_dim=cfg.pixels, temperature=cfg.temperature,
            prior_temperature=cfg.prior_temperature, straight_through=cfg.straight_through,
            hidden=tuple(cfg.baseline_hidden))

    # --- the model's distributions -------------------------------------------------------------------
    def class_logits(self, x) -> torch.Tensor:
        """Logits of q(z | x): [B, K]."""
        return self.class_head(self.encoder(x)).float()

    def transform_posterior(self, x):
        """q(t | x), a diagonal Gaussian over the six affine parameters (D-VAE-ST only)."""
        return self.transform_head(self.localiser(x))

    def transform_prior(self, n: int):
        """p(t) = N(identity, σ₀² I)."""
        mean = torch.tensor(IDENTITY, device=self.prototype_offset.device).expand(n, AFFINE_DIM)
        logvar = torch.full_like(mean, 2 * math.log(self.cfg.transform_prior_std))
        return diag_gaussian(mean, logvar)

    def prototypes(self) -> torch.Tensor:
        """The K prototype images (pixel probabilities): [K, C, H, W]."""
        k = self.cfg.num_classes
        codes = torch.eye(k, device=self.prototype_offset.device)
        logits = self.prototype_offset + self.prototype_net(codes).view(k, *self.cfg.image_shape)
        return torch.sigmoid(logits.float())

    def warp(self, images: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Spatial transformer: images [B, M, C, H, W] (or [M, C, H, W], shared) warped by t [B, 6].

        t is the 2x3 matrix that maps output coordinates to input coordinates (affine_grid's convention);
        bilinear sampling with zero padding (the background), align_corners=False. Returns [B, M, C, H, W].
        """
        b = t.shape[0]
        if images.dim() == 4:
            images = images.unsqueeze(0).expand(b, *images.shape)
        m, c, h, w = images.shape[1:]
        grid = F.affine_grid(t.view(b, 2, 3), [b, m * c, h, w], align_corners=False)
        out = F.grid_sample(images.reshape(b, m * c, h, w), grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        return out.view(b, m, c, h, w)

    def components(self, t: torch.Tensor | None) -> torch.Tensor:
        """Pixel probabilities for each class: [K, P] (D-VAE) or [B, K, P] (D-VAE-ST, warped by t)."""
        protos = self.prototypes()
        if t is None:
            return protos.flatten(1)
        return self.warp(protos, t).flatten(2)

    def decode(self, z: torch.Tensor, components: torch.Tensor):
        """p(x | z, t) for codes z [..., B, K] (one-hot, relaxed or enumerated), given :meth:`components`."""
        if components.dim() == 2:
            mean = torch.einsum("...bk,kp->...bp", z, components)
        else:
            mean = torch.einsum("...bk,bkp->...bp", z, components)
        mean = mean.clamp(EPS, 1 - EPS).view(*z.shape[:-1], *self.cfg.image_shape)
        return pixel_likelihood(torch.logit(mean), self.cfg.likelihood)

    def _transform_sample(self, x):
        if not self.cfg.transform:
            return None, torch.zeros(x.shape[0], device=x.device)
        q_t = self.transform_posterior(x)
        t = q_t.rsample()
        kl_t = kl_divergence(q_t.base_dist, self.transform_prior(x.shape[0]).base_dist).sum(-1)
        return t, kl_t

    @staticmethod
    def class_kl(logits) -> torch.Tensor:
        """KL(q(z|x) ‖ Cat(1/K)) = log K − H(q), exact, per example."""
        uniform = Categorical(logits=torch.zeros_like(logits))
        return kl_divergence(Categorical(logits=logits), uniform)

    def seed_prototypes(self, x: torch.Tensor) -> None:
        """In training, seed the prototypes from the first minibatch `x` (:meth:`init_prototypes`) unless they
        are seeded already (or configured to start at random)."""
        if self.training and not bool(self.prototypes_initialised):
            self.init_prototypes(x)

    # --- objectives ----------------------------------------------------------------------------------
    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Negative ELBO (batch mean) whose encoder gradient comes from the configured estimator."""
        self.seed_prototypes(x)
        logits = self.class_logits(x)
        t, kl_t = self._transform_sample(x)
        comps = self.components(t)
        comps_cv = comps.detach()  # control variates must not reach the decoder or the localiser
        est = self.estimator(logits, lambda z: -self.decode(z, comps).log_prob(x),
                             lambda z: -self.decode(z, comps_cv).log_prob(x), context=x.flatten(1))
        kl_cat = self.class_kl(logits)
        kl_cat_train = kl_cat
        if self.cfg.relaxed_kl and isinstance(self.estimator, Concrete):
            kl_cat_train = self.estimator.relaxed_kl(logits)
        kl_dims = torch.stack([kl_cat_train, kl_t], -1) if self.cfg.transform else kl_cat_train.unsqueeze(-1)
        loss = est.objective.mean() + kl_weight * kl_penalty(kl_dims, free_bits)
        marginal_kl = uniform_kl(logits.softmax(-1).mean(0))
        if self.cfg.marginal_weight > 0:
            loss = loss + self.cfg.marginal_weight * marginal_kl
        kl = kl_cat + kl_t
        scalars = {"elbo": -(est.loss + kl).mean(), "recon": est.loss.mean(), "kl": kl.mean(),
                   "kl_class": kl_cat.mean(), "marginal_kl": marginal_kl.detach(),
                   **{f"est_{k}": v for k, v in est.stats.items()}}
        if self.cfg.transform:
            scalars["kl_transform"] = kl_t.mean()
        return loss, scalars

    def elbo_terms(self, x) -> ElboTerms:
        """Per-example E_q[log p(x|z,t)] with z enumerated (one t sample), KLs ([B, 1] or [B, 2]: class,
        transformation) and the ELBO."""
        logits = self.class_logits(x)
        t, kl_t = self._transform_sample(x)
        k = self.cfg.num_classes
        codes = torch.eye(k, device=x.device)[:, None, :].expand(k, x.shape[0], k)
        log_px_k = self.decode(codes, self.components(t)).log_prob(x)  # [K, B]
        log_px = (logits.softmax(-1).T * log_px_k).sum(0)
        kl_cat = self.class_kl(logits)
        kl_dims = torch.stack([kl_cat, kl_t], -1) if self.cfg.transform else kl_cat.unsqueeze(-1)
        return ElboTerms(log_px, kl_dims)

    def log_joint_over_classes(self, x, t=None) -> torch.Tensor:
        """log p(x | t) = logsumexp_z [log p(z) + log p(x | z, t)] per example: z summed out exactly."""
        k = self.cfg.num_classes
        codes = torch.eye(k, device=x.device)[:, None, :].expand(k, x.shape[0], k)
        log_px_k = self.decode(codes, self.components(t)).log_prob(x)
        return torch.logsumexp(log_px_k, 0) - math.log(k)

    def log_importance_weights(self, x, k: int):
        """[k, B] log-weights of an importance sampler for log p(x) with z summed out exactly: for the D-VAE
        every weight equals log p(x) (no sampling at all); for the D-VAE-ST t_i ~ q(t | x) and
        log w_i = log p(x | t_i) + log p(t_i) − log q(t_i | x)."""
        if not self.cfg.transform:
            return self.log_joint_over_classes(x).expand(k, -1)
        q_t, p_t = self.transform_posterior(x), self.transform_prior(x.shape[0])
        t = q_t.sample((k,))  # [k, B, 6]: all k samples in one batch of k·B images, each decoded K times
        log_px = self.log_joint_over_classes(x.expand(k, *x.shape).flatten(0, 1), t.flatten(0, 1)).view(k, -1)
        return log_px + p_t.log_prob(t) - q_t.log_prob(t)

    @property
    def decodes_per_sample(self) -> int:
        """Images decoded per (image, importance sample) by :meth:`log_importance_weights`: one per class for
        the D-VAE-ST (the D-VAE decodes its K classes once, whatever the number of samples)."""
        return self.cfg.num_classes if self.cfg.transform else 1

    def latent_means(self, x):
        """q(z | x) probabilities [B, K], followed by E_q[t | x] [B, 6] for the D-VAE-ST."""
        probs = self.class_logits(x).softmax(-1)
        return torch.cat([probs, self.transform_posterior(x).mean], -1) if self.cfg.transform else probs

    # --- clustering and images -----------------------------------------------------------------------
    @torch.no_grad()
    def code_order(self, kl_per_dim) -> CodeOrder:
        """The class (the most probable one), then the transformation (at the prior's mean before it)."""
        k = self.cfg.num_classes
        features, kl, labels = [list(range(k))], [[0]], ["class"]
        if self.cfg.transform:
            features, kl, labels = features + [list(range(k, k + AFFINE_DIM))], kl + [[1]], labels + ["transformation"]

        def log_px(x, g):
            t = None
            if self.cfg.transform:
                t = self.transform_posterior(x).mean if g > 1 else self.transform_prior(len(x)).mean
            return self.decode(F.one_hot(self.cluster(x), k).float(), self.components(t)).log_prob(x)
        def sample(x, g, image=True):  # the class, then the transformation, from q; the rest from the prior
            logits = self.class_logits(x) if g >= 1 else torch.zeros(len(x), k, device=x.device)  # p(z) uniform
            t = None
            if self.cfg.transform:
                t = (self.transform_posterior(x) if g > 1 else self.transform_prior(len(x))).sample()
            p = self.decode(F.one_hot(Categorical(logits=logits).sample(), k).float(), self.components(t))
            return p.log_prob(x), (p.mean if image else None)
        def code(x):  # the class drawn from q as a one-hot vector, then the transformation drawn from q
            z = F.one_hot(Categorical(logits=self.class_logits(x)).sample(), k).float()
            return torch.cat([z, self.transform_posterior(x).sample()], -1) if self.cfg.transform else z
        return CodeOrder("class, then transformation", labels, features, kl, log_px, clusters=True, sample=sample,
                         code_sample=code)

    def cluster(self, x) -> torch.Tensor:
        """The cluster of each image: argmax_z q(z | x), [B]."""
        return self.class_logits(x).argmax(-1)

    @torch.no_grad()
    def reconstruct(self, x):
        """Pixel probabilities of p(x | z, t) at the most probable class and the posterior mean of t."""
        z = F.one_hot(self.cluster(x), self.cfg.num_classes).float()
        t = self.transform_posterior(x).mean if self.cfg.transform else None
        return self.decode(z, self.components(t)).mean

    @torch.no_grad()
    def sample(self, n: int):
        """Pixel probabilities for n draws (z, t) ~ p(z) p(t)."""
        z = F.one_hot(torch.randint(self.cfg.num_classes, (n,), device=self.prototype_offset.device),
                      self.cfg.num_classes).float()
        t = self.transform_prior(n).sample() if self.cfg.transform else None
        return self.decode(z, self.components(t)).mean

    @torch.no_grad()
    def init_prototypes(self, x: torch.Tensor) -> None:
        """Seed the prototypes with K images of `x` chosen by k-means++ (each next image drawn with
        probability proportional to its squared distance from the nearest image chosen so far), lightly
        blurred. Starting from distinct, data-like prototypes avoids the symmetric start from which every
        image falls into the same cluster."""
        flat = x.flatten(1).float()
        k = self.cfg.num_classes
        chosen = [int(torch.randint(len(flat), (1,)))]
        dist = ((flat - flat[chosen[0]]) ** 2).sum(-1)
        for _ in range(1, k):
            weights = dist if dist.sum() > 0 else torch.ones_like(dist)
            i = int(torch.multinomial(weights, 1))
            chosen.append(i)
            dist = torch.minimum(dist, ((flat - flat[i]) ** 2).sum(-1))
        images = x[chosen].float()
        blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
        self.prototype_offset.copy_(torch.logit(0.05 + 0.9 * blurred))
        self.prototypes_initialised.fill_(True)
