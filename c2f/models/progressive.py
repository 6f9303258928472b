"""Progressive (coarse-to-fine) VAEs whose latents come in G ordered groups, any prefix of which can be decoded.

All models but :class:`MultipleVAE` share one *modular* backbone: an MLP encoder, one Gaussian head per
group, and a decoder whose input is the **sum** of per-group projections, so the decoder can be run on
groups 1..g for any g (an absent group contributes nothing). They differ in how the posterior of group g is
formed and in the training objective:

* :class:`GroupedVAE`  the standard VAE: all groups trained jointly on the full ELBO (the baseline).
* :class:`SingleVAE`   nested prefixes: for every g, the likelihood of the image decoded from groups 1..g
  minus the KL of group g, with the samples of groups < g detached in that term.
* :class:`RecurrentVAE` refinement from a learned blank canvas: group g is inferred from the image and the
  current (detached) reconstruction; every prefix pays its own ELBO with the cumulative KL. ``merge``
  chooses how the two encodings are combined (``concat``: an MLP on the concatenation feeding the heads;
  ``per_group``: a small network per group; ``gaussian``: each encoding through the group's head, then the
  two Gaussians' parameters merged by a small network; ``quotient``: :class:`QuotientVAE`). With
  ``reconstruction=False`` the image alone feeds the heads.
* :class:`QuotientVAE` the recurrent model whose posterior divides out of q(z_g | x) what the
  reconstruction already explains (:func:`gaussian_quotient`).
* :class:`MultipleVAE` one small VAE per group, trained one after another (``set_stage``); model k adds its
  logits to those of the frozen models 1..k-1, so it is trained to explain the residual in logit space. Its
  input is the residual image (``combined``), the image (``original``) or the previous reconstruction
  (``reconstruction``).

Every model exposes ``elbo_terms(x, groups=g)``, ``log_importance_weights(x, k, groups=g)`` and
``reconstruct(x, groups=g)`` for a prefix, and ``decode_groups`` for any subset of groups (in any order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import kl_divergence

from c2f.nn import ACTIVATIONS, GaussianHead, ImageConfig, diag_gaussian, mlp, pixel_likelihood, standard_normal
from c2f.objectives import CodeOrder, ElboTerms, kl_penalty

MERGES = ("concat", "per_group", "gaussian", "quotient")
MULTIPLE_INPUTS = ("combined", "original", "reconstruction")


@dataclass
class ProgressiveConfig(ImageConfig):
    groups: int = 10  # G
    group_size: int = 1  # latents per group, k
    hidden: tuple[int, ...] = (256,)  # encoder MLP widths; the decoder trunk mirrors them
    activation: str = "relu"
    likelihood: str = "bernoulli"  # or "continuous_bernoulli" for grey levels
    image_shape: tuple[int, int, int] = (1, 28, 28)
    reconstruction: bool = True  # recurrent models: feed the current reconstruction back (R) or not (NoR)
    merge: str = "concat"  # recurrent models: concat | per_group | gaussian | quotient
    merge_hidden: int = 64  # width of the per-group / Gaussian-merging networks
    inputs: str = "combined"  # MultipleVAE: combined | original | reconstruction
    step_per_group: bool = False  # SingleVAE: one optimizer step per group term instead of one per minibatch

    @property
    def latent_dim(self) -> int:
        return self.groups * self.group_size


def gaussian_quotient(mean1, logvar1, mean2, logvar2):
    """The renormalised quotient N(mean1, var1) / N(mean2, var2) of two diagonal Gaussians.

    The second variance is first lifted above the first, var2 <- var1 + softplus(var2 - var1), so that the
    precision difference 1/var = 1/var1 - 1/var2 is positive; then mean = var (mean1/var1 - mean2/var2).
    Returns (mean, logvar).
    """
    var1 = logvar1.exp()
    gap = F.softplus(logvar2.exp() - var1).clamp_min(1e-8)  # var2 - var1 after lifting
    var2 = var1 + gap
    # 1/var = 1/var1 - 1/var2 = gap / (var1 var2), written so that it does not cancel
    logvar = logvar1 + var2.log() - gap.log()
    mean = logvar.exp() * (mean1 / var1 - mean2 / var2)
    return mean, logvar


def _encoder(cfg: ProgressiveConfig) -> nn.Module:
    return nn.Sequential(nn.Flatten(), mlp([cfg.pixels, *cfg.hidden], cfg.activation, last_activation=True))


class ModularDecoder(nn.Module):
    """One projection per group (linear + activation) into a common width; their sum feeds an MLP trunk that
    outputs pixel logits. ``forward(zs)`` takes a list with one entry per group (None: group left out)."""

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        width = cfg.hidden[-1]
        self.width = width
        self.projections = nn.ModuleList(
            nn.Sequential(nn.Linear(cfg.group_size, width), ACTIVATIONS[cfg.activation]())
            for _ in range(cfg.groups))
        self.trunk = nn.Sequential(mlp([width, *reversed(cfg.hidden), cfg.pixels], cfg.activation),
                                   nn.Unflatten(-1, cfg.image_shape))

    def project(self, g: int, z: torch.Tensor) -> torch.Tensor:
        return self.projections[g](z)

    def forward(self, zs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        parts = [self.project(g, z) for g, z in enumerate(zs) if z is not None]
        if not parts:
            raise ValueError("decode at least one group")
        return self.trunk(torch.stack(parts).sum(0))


class GroupModel(nn.Module):
    """What every grouped model shares: prefix ELBO, importance weights and images, all from ``_steps``."""

    cfg: ProgressiveConfig

    @property
    def num_groups(self) -> int:
        return self.cfg.groups

    @property
    def default_groups(self) -> int:
        """How many groups are decoded when none is given: all of them."""
        return self.cfg.groups

    #: whether the training orders the groups, coarse first (:class:`c2f.objectives.Progressive`)
    ordered_groups = True

    def groups_by_kl(self, kl_per_dim) -> list[int]:
        """The groups (0-based) ordered by their KL, largest first: the order of a model with none of its own."""
        return self.kl_groups(torch.as_tensor(kl_per_dim)).argsort(descending=True).tolist()

    def _check(self, groups):
        g = self.default_groups if groups is None else int(groups)
        if not 1 <= g <= self.cfg.groups:
            raise ValueError(f"groups must be in 1..{self.cfg.groups}, got {groups}")
        return g

    def _steps(self, x, g: int, sample: bool = True):
        """Yield (q_i, z_i, logits of the prefix 1..i) for i = 1..g (one posterior sample per group)."""
        raise NotImplementedError

    def _run(self, x, g, sample=True):
        qs, zs, logits = [], [], None
        for q, z, logits in self._steps(x, g, sample):
            qs.append(q)
            zs.append(z)
        return qs, zs, logits

    def _kl_dims(self, qs, batch: int) -> torch.Tensor:
        """KL of each latent dimension [B, G*k]; dimensions of groups not decoded are 0."""
        kl = torch.cat([kl_divergence(q.base_dist, standard_normal(q.mean.shape, q.mean.device).base_dist)
                        for q in qs], -1)
        return F.pad(kl, (0, self.cfg.latent_dim - kl.shape[-1]))

    def kl_groups(self, kl_dims: torch.Tensor) -> torch.Tensor:
        """Per-dimension KLs [B, G*k] summed within each group: [B, G]."""
        return kl_dims.view(*kl_dims.shape[:-1], self.cfg.groups, self.cfg.group_size).sum(-1)

    def likelihood(self, logits):
        return pixel_likelihood(logits, self.cfg.likelihood)

    def elbo_terms(self, x, groups: int | None = None) -> ElboTerms:
        """Per-example ELBO of the model that decodes only groups 1..g (all groups by default): one posterior
        sample, KLs in closed form. Groups after g are not used, so they cost nothing."""
        g = self._check(groups)
        qs, _, logits = self._run(x, g)
        return ElboTerms(self.likelihood(logits).log_prob(x), self._kl_dims(qs, x.shape[0]))

    @torch.no_grad()
    def log_importance_weights(self, x, k: int, groups: int | None = None):
        """log p(x, z_1..g) - log q(z_1..g | x) for k posterior samples: shape [k, B]."""
        g = self._check(groups)
        b = x.shape[0]
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        qs, zs, logits = self._run(xk, g)
        logw = self.likelihood(logits).log_prob(xk)
        for q, z in zip(qs, zs):
            logw = logw + standard_normal(z.shape, z.device).log_prob(z) - q.log_prob(z)
        return logw.view(k, b)

    def _prefix_pass(self, x, sample: bool = True):
        """One pass through groups 1..default_groups: the posteriors, the latents and log p(x | z_≤g) of
        every prefix g ([G', B], G' = default_groups), so a whole prefix curve costs one pass."""
        qs, zs, log_px = [], [], []
        for q, z, logits in self._steps(x, self.default_groups, sample):
            qs.append(q)
            zs.append(z)
            log_px.append(self.likelihood(logits).log_prob(x))
        return qs, zs, torch.stack(log_px)

    @torch.no_grad()
    def prefix_elbo_terms(self, x) -> list[ElboTerms]:
        """:meth:`elbo_terms` of every prefix g = 1..G' from one posterior sample (entry g − 1; the KLs of
        the groups after g are 0 in it)."""
        qs, _, log_px = self._prefix_pass(x)
        kl_dims = self._kl_dims(qs, x.shape[0])
        k = self.cfg.group_size
        return [ElboTerms(log_px[g], F.pad(kl_dims[:, :(g + 1) * k], (0, kl_dims.shape[-1] - (g + 1) * k)))
                for g in range(len(qs))]

    @torch.no_grad()
    def prefix_log_importance_weights(self, x, k: int):
        """:meth:`log_importance_weights` of every prefix g = 1..G' from the same k samples: [G', k, B]."""
        b = x.shape[0]
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        qs, zs, log_px = self._prefix_pass(xk)
        ratio = torch.stack([standard_normal(z.shape, z.device).log_prob(z) - q.log_prob(z) for q, z in zip(qs, zs)])
        return (log_px + ratio.cumsum(0)).view(len(qs), k, b)

    @torch.no_grad()
    def latent_means(self, x):
        """Posterior means of all groups, concatenated: [B, G*k] (recurrent models: along the mean path)."""
        qs, _, _ = self._run(x, self.cfg.groups, sample=False)
        return torch.cat([q.mean for q in qs], -1)

    @torch.no_grad()
    def reconstruct(self, x, groups: int | None = None):
        """Pixel probabilities decoded from the posterior means of groups 1..g."""
        _, _, logits = self._run(x, self._check(groups), sample=False)
        return torch.sigmoid(logits)

    def decode_logits(self, zs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """Pixel logits decoded from latents given per group, None for a group left out (so any subset, in
        any order, e.g. one group alone)."""
        return self.decoder(zs)

    @torch.no_grad()
    def decode_groups(self, zs: Sequence[torch.Tensor | None]):
        """Pixel probabilities (σ of the logits) for latents given per group; see :meth:`decode_logits`."""
        return torch.sigmoid(self.decode_logits(zs))

    @torch.no_grad()
    def subset_log_likelihood(self, x, subset: Sequence[int]) -> torch.Tensor:
        """Mean log p(x | z_S) when only the groups in `subset` (0-based) are decoded, each at its posterior
        mean (no KL: a measure of what those groups explain, for comparing orders)."""
        zs = self.split_groups(self.latent_means(x))
        keep = set(subset)
        return self.likelihood(self.decode_logits([z if i in keep else None for i, z in enumerate(zs)])).log_prob(x).mean()

    def code_order(self, kl_per_dim) -> CodeOrder:
        """Groups 1..G' (G' = default_groups), coarse first; a prefix leaves the later groups out, as the model
        was trained to decode it. A model whose groups have no order of their own (``ordered_groups`` False)
        takes them by KL, largest first (:meth:`groups_by_kl`)."""
        k, n = self.cfg.group_size, self.default_groups
        order = list(range(n)) if self.ordered_groups else self.groups_by_kl(kl_per_dim)[:n]
        cols = [list(range(g * k, (g + 1) * k)) for g in order]

        def log_px(x, g):
            zs, keep = self.split_groups(self.latent_means(x)), set(order[:g])
            return self.likelihood(self.decode_logits([z if i in keep else None for i, z in enumerate(zs)])).log_prob(x)
        def sample(x, g, image=True):  # groups of the prefix from q (in sequence), the others from N(0, I)
            _, zs, _ = self._run(x, n)
            keep = set(order[:g])
            logits = self.decode_logits([z if i in keep else torch.randn_like(z) for i, z in enumerate(zs)])
            return self.likelihood(logits).log_prob(x), (torch.sigmoid(logits) if image else None)
        code = lambda x: torch.cat(self._run(x, self.cfg.groups)[1], -1)  # noqa: E731 - one draw of all groups
        if self.ordered_groups:
            return CodeOrder("latent groups 1..G", [f"group {g}" for g in range(1, n + 1)], cols, cols, log_px,
                             sample=sample, code_sample=code)
        return CodeOrder("latent groups by KL, largest first", [f"group {g + 1}" for g in order], cols, cols, log_px,
                         sample=sample, code_sample=code)

    def split_groups(self, z: torch.Tensor) -> list[torch.Tensor]:
        """[..., G*k] -> G tensors [..., k]."""
        return list(z.split(self.cfg.group_size, -1))

    def loss_scalars(self, log_px, kl_groups):
        kl = kl_groups.sum(-1)
        return {"elbo": (log_px - kl).mean(), "recon": -log_px.mean(), "kl": kl.mean()}


class _ModularModel(GroupModel):
    """Encoder, one Gaussian head per group, and the modular decoder."""

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = _encoder(cfg)
        self.heads = nn.ModuleList(GaussianHead(cfg.hidden[-1], cfg.group_size) for _ in range(cfg.groups))
        self.decoder = ModularDecoder(cfg)

    def group_posteriors(self, x) -> list:
        """q(z_g | x) of every group; here they do not depend on each other."""
        h = self.encoder(x)
        return [head(h) for head in self.heads]

    def _steps(self, x, g, sample=True):
        qs = self.group_posteriors(x)[:g]
        zs = [q.rsample() if sample else q.mean for q in qs]
        for i in range(g):
            yield qs[i], zs[i], self.decoder(zs[:i + 1])

    def _run(self, x, g, sample=True):
        # the heads do not depend on earlier groups: decode once, not once per prefix
        h = self.encoder(x)
        qs = [self.heads[i](h) for i in range(g)]
        zs = [q.rsample() if sample else q.mean for q in qs]
        return qs, zs, self.decoder(zs)

class GroupedVAE(_ModularModel):
    """The standard VAE on the modular backbone: every group trained jointly on the full ELBO, so its groups
    have no order of their own."""

    ordered_groups = False

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        qs, _, logits = self._run(x, self.cfg.groups)
        log_px = self.likelihood(logits).log_prob(x)
        klg = self.kl_groups(self._kl_dims(qs, x.shape[0]))
        loss = -log_px.mean() + kl_weight * kl_penalty(klg, free_bits)
        return loss, self.loss_scalars(log_px, klg)


class SingleVAE(_ModularModel):
    """Nested prefixes on one shared encoder and decoder: the loss is Σ_g [−log p(x | z_≤g) + KL(q_g‖p)],
    where in term g the samples of the earlier groups are detached (their heads are held fixed).

    With ``step_per_group`` the G terms are G optimizer steps per minibatch (``part`` = g − 1 selects the
    term; the encoder is re-run before each, so term g sees the parameters updated by term g − 1)."""

    @property
    def steps_per_batch(self) -> int:
        return self.cfg.groups if self.cfg.step_per_group else 1

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0, part: int | None = None):
        h = self.encoder(x)
        qs = [head(h) for head in self.heads]
        zs = [q.rsample() for q in qs]
        klg = self.kl_groups(self._kl_dims(qs, x.shape[0]))
        first, last = (0, self.cfg.groups - 1) if part is None else (part, part)
        acc_fixed = sum(self.decoder.project(i, zs[i].detach()) for i in range(first))
        loss = 0.0
        for g in range(first, last + 1):
            log_px = self.likelihood(self.decoder.trunk(acc_fixed + self.decoder.project(g, zs[g]))).log_prob(x)
            loss = loss - log_px.mean() + kl_weight * kl_penalty(klg[:, g:g + 1], free_bits)
            acc_fixed = acc_fixed + self.decoder.project(g, zs[g].detach())
        return loss, self.loss_scalars(log_px.detach(), klg[:, :last + 1])


class RecurrentVAE(GroupModel):
    """Refinement of a learned blank canvas, one group per step (after Conv-DRAW, with fixed per-group
    decoder projections). Step g infers q(z_g | x, x̂_{g−1}) from the encodings of the image and of the
    current reconstruction x̂_{g−1} (detached; x̂_0 the canvas), decodes groups 1..g, and adds that
    prefix's negative ELBO, with the cumulative KL, to the loss."""

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        if cfg.merge not in MERGES:
            raise ValueError(f"unknown merge {cfg.merge!r}; choose one of {MERGES}")
        self.cfg = cfg
        width, k = cfg.hidden[-1], cfg.group_size
        act = cfg.activation
        self.encoder = _encoder(cfg)
        self.decoder = ModularDecoder(cfg)
        self.canvas = nn.Parameter(torch.zeros(cfg.image_shape))  # logits of the first reconstruction
        if not cfg.reconstruction or cfg.merge in ("concat", "gaussian", "quotient"):
            self.heads = nn.ModuleList(GaussianHead(width, k) for _ in range(cfg.groups))
        if cfg.reconstruction and cfg.merge == "concat":
            self.combine = mlp([2 * width, width, width], act, last_activation=True)
        if cfg.reconstruction and cfg.merge == "per_group":
            self.group_nets = nn.ModuleList(
                nn.Sequential(mlp([2 * width, cfg.merge_hidden], act, last_activation=True),
                              GaussianHead(cfg.merge_hidden, k)) for _ in range(cfg.groups))
        if cfg.reconstruction and cfg.merge == "gaussian":
            self.mergers = nn.ModuleList(mlp([4 * k, cfg.merge_hidden, 2 * k], act) for _ in range(cfg.groups))

    def posterior(self, g: int, hx, hr):
        """q(z_g | x, x̂): `hx`, `hr` are the encodings of the image and of the reconstruction."""
        cfg = self.cfg
        if not cfg.reconstruction:
            return self.heads[g](hx)
        if cfg.merge == "concat":
            return self.heads[g](self.combine(torch.cat([hx, hr], -1)))
        if cfg.merge == "per_group":
            return self.group_nets[g](torch.cat([hx, hr], -1))
        qx, qr = self.heads[g].params(hx), self.heads[g].params(hr)  # (mean, log-variance) each
        if cfg.merge == "gaussian":
            return diag_gaussian(*self.mergers[g](torch.cat([*qx, *qr], -1)).chunk(2, -1))
        return diag_gaussian(*gaussian_quotient(*qx, *qr))

    def _steps(self, x, g, sample=True):
        hx = self.encoder(x)
        # the canvas is a parameter and learns through the first step; later reconstructions are detached
        recon = torch.sigmoid(self.canvas).expand(x.shape[0], *self.cfg.image_shape)
        acc = 0
        for i in range(g):
            hr = self.encoder(recon) if self.cfg.reconstruction else None
            q = self.posterior(i, hx, hr)
            z = q.rsample() if sample else q.mean
            acc = acc + self.decoder.project(i, z)
            logits = self.decoder.trunk(acc)
            recon = torch.sigmoid(logits).detach()
            yield q, z, logits

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        loss, kls = 0.0, []
        for q, _, logits in self._steps(x, self.cfg.groups):
            log_px = self.likelihood(logits).log_prob(x)
            kls.append(kl_divergence(q.base_dist, standard_normal(q.mean.shape, x.device).base_dist).sum(-1))
            klg = torch.stack(kls, -1)
            loss = loss - log_px.mean() + kl_weight * kl_penalty(klg, free_bits)
        return loss, self.loss_scalars(log_px.detach(), klg.detach())


class QuotientVAE(RecurrentVAE):
    """The recurrent model with the Gaussian-quotient posterior q(z_g|x) / q(z_g|x̂_{g−1})."""

    def __init__(self, cfg: ProgressiveConfig):
        if cfg.merge != "quotient" or not cfg.reconstruction:
            cfg = ProgressiveConfig(**{**cfg.__dict__, "merge": "quotient", "reconstruction": True})
        super().__init__(cfg)

    @torch.no_grad()
    def precisions(self, x) -> dict[str, torch.Tensor]:
        """Along the mean path, per image and latent [B, G*k]: the precision 1/σ₁² of the numerator q(z_g|x),
        the precision 1/σ₂² divided out (after the lift of σ₂², see :func:`gaussian_quotient`), and the
        precision of the quotient posterior, their difference."""
        hx = self.encoder(x)
        recon = torch.sigmoid(self.canvas).expand(x.shape[0], *self.cfg.image_shape)
        acc, out = 0, {"numerator": [], "divided_out": [], "quotient": []}
        for i in range(self.cfg.groups):
            qx, qr = self.heads[i](hx), self.heads[i](self.encoder(recon))
            var1, var2 = qx.variance, qr.variance
            lifted = var1 + F.softplus(var2 - var1).clamp_min(1e-8)
            mean, logvar = gaussian_quotient(qx.mean, var1.log(), qr.mean, var2.log())
            out["numerator"].append(1 / var1)
            out["divided_out"].append(1 / lifted)
            out["quotient"].append((-logvar).exp())
            acc = acc + self.decoder.project(i, mean)
            recon = torch.sigmoid(self.decoder.trunk(acc))
        return {k: torch.cat(v, -1) for k, v in out.items()}


class _SmallVAE(nn.Module):
    """One member of :class:`MultipleVAE`: an MLP encoder, one Gaussian head and an MLP decoder to logits."""

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        self.encoder = _encoder(cfg)
        self.head = GaussianHead(cfg.hidden[-1], cfg.group_size)
        self.decoder = nn.Sequential(mlp([cfg.group_size, *reversed(cfg.hidden), cfg.pixels], cfg.activation),
                                     nn.Unflatten(-1, cfg.image_shape))


class MultipleVAE(GroupModel):
    """G independent small VAEs trained one after another; the image logits are the sum of their outputs.

    ``set_stage(s)`` makes model s the one being trained (models < s frozen, models > s unused), and the
    loss is the ELBO of models 1..s together. Model k's input: the residual x − x̂_{k−1} (``combined``),
    the image (``original``) or the previous reconstruction x̂_{k−1} (``reconstruction``); model 1 sees x.
    """

    def __init__(self, cfg: ProgressiveConfig):
        super().__init__()
        if cfg.inputs not in MULTIPLE_INPUTS:
            raise ValueError(f"unknown inputs {cfg.inputs!r}; choose one of {MULTIPLE_INPUTS}")
        self.cfg = cfg
        self.models = nn.ModuleList(_SmallVAE(cfg) for _ in range(cfg.groups))
        self.stage = cfg.groups

    @property
    def default_groups(self) -> int:
        """The models trained so far: 1..stage."""
        return self.stage

    @property
    def num_stages(self) -> int:
        """Trained in G stages, one small VAE each (see :func:`c2f.train.train_stages`)."""
        return self.cfg.groups

    def set_stage(self, stage: int) -> "MultipleVAE":
        if not 1 <= stage <= self.cfg.groups:
            raise ValueError(f"stage must be in 1..{self.cfg.groups}, got {stage}")
        self.stage = stage
        for i, m in enumerate(self.models):
            m.requires_grad_(i == stage - 1)
        return self

    def _input(self, x, k: int, logits):
        if k == 0 or self.cfg.inputs == "original":
            return x
        if self.cfg.inputs == "combined":
            return x - torch.sigmoid(logits)
        return torch.sigmoid(logits)

    def _steps(self, x, g, sample=True):
        logits = 0
        for i in range(g):
            m = self.models[i]
            q = m.head(m.encoder(self._input(x, i, logits)))
            z = q.rsample() if sample else q.mean
            logits = logits + m.decoder(z)
            yield q, z, logits

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        qs, _, logits = self._run(x, self.stage)
        log_px = self.likelihood(logits).log_prob(x)
        klg = self.kl_groups(self._kl_dims(qs, x.shape[0]))[:, :self.stage]
        loss = -log_px.mean() + kl_weight * kl_penalty(klg[:, -1:], free_bits)  # earlier KLs are constants
        return loss, self.loss_scalars(log_px, klg)

    def decode_logits(self, zs: Sequence[torch.Tensor | None]) -> torch.Tensor:
        """The sum of the output logits of the models whose latents are given (None: model left out)."""
        parts = [self.models[i].decoder(z) for i, z in enumerate(zs) if z is not None]
        if not parts:
            raise ValueError("decode at least one group")
        return torch.stack(parts).sum(0)


# the chapter's model variants: name -> (model class name, config overrides)
VARIANTS = {
    "standard": ("standard", {}),
    "single": ("single", {}),
    "single_steps": ("single", {"step_per_group": True}),
    "multiple_combined": ("multiple", {"inputs": "combined"}),
    "multiple_original": ("multiple", {"inputs": "original"}),
    "multiple_reconstruction": ("multiple", {"inputs": "reconstruction"}),
    "rnn": ("rnn", {"reconstruction": True, "merge": "concat"}),
    "rnn_nor": ("rnn", {"reconstruction": False}),
    "rnn_per_group": ("rnn", {"reconstruction": True, "merge": "per_group"}),
    "rnn_gaussian": ("rnn", {"reconstruction": True, "merge": "gaussian"}),
    "quotient": ("quotient", {"reconstruction": True, "merge": "quotient"}),
}

KINDS = {"standard": GroupedVAE, "single": SingleVAE, "rnn": RecurrentVAE, "quotient": QuotientVAE,
         "multiple": MultipleVAE}


def make_progressive(kind: str, cfg: ProgressiveConfig) -> GroupModel:
    """A progressive model by name: standard | single | rnn | quotient | multiple."""
    if kind not in KINDS:
        raise ValueError(f"unknown progressive model {kind!r}; choose one of {sorted(KINDS)}")
    return KINDS[kind](cfg)


def make_variant(name: str, base: ProgressiveConfig) -> GroupModel:
    """One of the chapter's named variants (:data:`VARIANTS`) built on the shared base configuration."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {sorted(VARIANTS)}")
    kind, overrides = VARIANTS[name]
    return make_progressive(kind, ProgressiveConfig(**{**base.__dict__, **overrides}))
