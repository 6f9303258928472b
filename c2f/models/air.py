"""Attend-Infer-Repeat (Eslami et al. 2016), Difference-AIR and Discrete AIR (the thesis behind chapter 05).

A scene is explained by at most T objects, inferred one per step. Step i has three latents:

* z_pres,i ∈ {0, 1}: whether the step adds an object. A step exists only if every earlier one does, so the
  steps' presences amount to one count n = Σ_i z_pres,i ∈ {0..T}. Prior Bern(ρ) per step, i.e.
  p(n) = ρⁿ(1 − ρ) for n < T and ρᵀ for n = T.
* z_where,i = (s, c_x, c_y): where the object is. The window is the square of side 1/s of the canvas (in
  the canvas's [−1, 1] coordinates) centred on c; a spatial transformer (``affine_grid``/``grid_sample``)
  crops it from the image (image → window) and pastes the decoded object back (window → image, the inverse
  map). Prior N((s₀, 0, 0), diag(σ_s², σ_c², σ_c²)).
* z_what,i: what the object is. **AIR**: the Gaussian code of a small VAE on the window, prior N(0, I).
  **Discrete AIR (DAIR)**: chapter 05's D-VAE-ST on the window, a class c_i ~ Cat(1/K) choosing one of K
  prototypes and an affine transformation t_i ~ N(identity, σ₀² I) that warps it.

The image is x ~ Bernoulli(clamp(Σ_{i ≤ n} paste(object_i, z_where,i))) (or, with ``likelihood="gaussian"``,
N(Σ_{i ≤ n} paste(object_i, z_where,i), pixel_var I), the thesis's and pyro's likelihood): objects are added,
with no background. :meth:`AIR.sample` is this story written as sampling statements. Inference is a recurrent network (an ``LSTMCell``) over the steps, fed with features of the image
and the previous step's where and what; **Difference-AIR** (``inference="difference"``, Eslami et al.'s
variant) feeds it the features of the residual x − (canvas drawn so far) instead. q(z_pres,i = 1) = p_i
comes from the state, so q(n) = p_1 ⋯ p_n (1 − p_{n+1}).

Step i's network runs only when the steps before it are all present, so its input never depends on a
sampled presence: all T steps are inferred, and the presences only decide how many of them the image uses.
The count n is therefore one categorical variable with logits log q(n), and its gradient comes from any
estimator of :mod:`c2f.estimators` applied to the cost of each count,

    cost(n) = −log p(x | objects 1..n) + Σ_{i ≤ n} (KL_where,i + KL_what,i),
    −ELBO = E_{q(n)}[cost(n)] + KL(q(n) ‖ p(n)),

which holds every cost a presence influences (the image's likelihood and the KLs of all later steps).
``count_estimator="nvil"`` is AIR's score-function estimator with a learned input-dependent baseline (here
standardised, see :class:`c2f.estimators.NVIL`); ``"exact"`` enumerates the T + 1 counts: T + 1 likelihoods
per image, no sampling at all. z_where and AIR's z_what are reparameterised. DAIR's class code c_i gets the
D-VAE-ST's own estimator, applied to the expected likelihood of step i's window over the counts that use
step i, with everything else held at its sampled value; the network sees the class probabilities, not the
sampled class, so the class influences the likelihood only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Bernoulli, Categorical, OneHotCategorical, kl_divergence

from c2f.estimators import ESTIMATORS, make_estimator
from c2f.models.dvae import AFFINE_DIM, DVAE, DVAEConfig, uniform_kl
from c2f.nn import GaussianHead, ImageConfig, diag_gaussian, mlp, pixel_likelihood, standard_normal
from c2f.objectives import ElboTerms, kl_penalty

EPS = 1e-4  # pixel probabilities are kept in [EPS, 1 - EPS]
MIN_SCALE = 0.3  # s is clamped here in the transformer: a window at most 1 / 0.3 times the canvas
WHERE_DIM = 3  # z_where = (s, c_x, c_y)
WHATS = ("gaussian", "prototypes")
LIKELIHOODS = ("bernoulli", "gaussian")
INFERENCES = ("air", "difference")


@dataclass
class AIRConfig(ImageConfig):
    image_shape: tuple[int, int, int] = (1, 50, 50)
    max_steps: int = 3  # T, the most objects a scene can hold
    window: int = 20  # side in pixels of the decoded object
    what: str = "gaussian"  # gaussian: AIR's continuous code; prototypes: DAIR's D-VAE-ST
    inference: str = "air"  # air: the network sees the image; difference: the residual image − canvas
    count_estimator: str = "exact"  # the count's estimator (c2f.estimators): exact enumeration, or AIR's nvil
    class_estimator: str = "exact"  # DAIR's estimator for the class code
    class_marginal_weight: float = 30.0  # DAIR: weight of KL(mean class probabilities ‖ uniform) (chapter 05)
    z_what: int = 50  # AIR's code size
    num_classes: int = 10  # DAIR's K
    features: int = 256  # image features fed to the recurrent network
    hidden: int = 256  # the LSTM state
    what_hidden: int = 200  # the window encoder and decoder (AIR), the D-VAE-ST's networks (DAIR)
    baseline_hidden: int = 256  # NVIL's baseline network
    pres_prior: float = 0.01  # ρ
    pres_init_logit: float = 2.0  # bias of q(z_pres)'s logit at initialisation (its weights start at zero)
    likelihood: str = "bernoulli"  # bernoulli: Bernoulli(clamp(Σ objects)); gaussian: N(Σ objects, pixel_var I)
    pixel_var: float = 0.2  # the Gaussian likelihood's fixed pixel variance (the thesis: 0.2; pyro: 0.3²)
    scale_prior: float = 2.5  # s₀: canvas side / object side (50 / 20)
    scale_prior_std: float = 0.2
    where_init_logvar: float = -3.0  # log-variance of q(z_where) at initialisation
    shift_prior_std: float = 1.0
    transform_prior_std: float = 0.1  # DAIR: σ₀ of t
    decoder_bias: float = -2.0  # AIR: initial bias of the object decoder's logits (objects start faint)

    def validate(self) -> None:
        for name, value, allowed in (("what", self.what, WHATS), ("inference", self.inference, INFERENCES),
                                     ("likelihood", self.likelihood, LIKELIHOODS),
                                     ("count_estimator", self.count_estimator, ESTIMATORS),
                                     ("class_estimator", self.class_estimator, ESTIMATORS)):
            if value not in allowed:
                raise ValueError(f"AIR {name} must be one of {allowed}, got {value!r}")
        if not 0.0 < self.pres_prior < 1.0:
            raise ValueError(f"pres_prior must be in (0, 1), got {self.pres_prior}")
        if self.max_steps < 1 or self.window < 1:
            raise ValueError(f"max_steps and window must be >= 1, got {self.max_steps} and {self.window}")


@dataclass
class Inference:
    """All T steps for a batch of B scenes (stacked over steps in dimension 1)."""

    pres_logits: torch.Tensor  # logit of q(z_pres,i = 1) [B, T]
    where: torch.Tensor  # z_where [B, T, WHERE_DIM]
    what: torch.Tensor  # z_what [B, T, D] (DAIR: the class probabilities, then t)
    objects: torch.Tensor  # each step's object pasted on an empty canvas [B, T, 1, H, W]
    kl: torch.Tensor  # KL_where,i + KL_what,i [B, T]
    log_ratio: torch.Tensor  # log p − log q of the sampled where and what [B, T]
    features: torch.Tensor  # the image features [B, F] (the baseline's input)
    class_logits: torch.Tensor | None = None  # DAIR: q(c_i | window) [B, T, K]
    windows: torch.Tensor | None = None  # DAIR: the attended windows [B, T, 1, w, w]
    transforms: torch.Tensor | None = None  # DAIR: t_i [B, T, AFFINE_DIM]


def count_logits(pres_logits: torch.Tensor) -> torch.Tensor:
    """log q(n), n = 0..T, from the steps' presence logits [..., T]: log p_1 + … + log p_n + log(1 − p_{n+1})
    (the last factor absent for n = T)."""
    log_p, log_not = F.logsigmoid(pres_logits), F.logsigmoid(-pres_logits)
    present = torch.cat([torch.zeros_like(log_p[..., :1]), log_p.cumsum(-1)], -1)
    stop = torch.cat([log_not, torch.zeros_like(log_not[..., :1])], -1)
    return present + stop


class AIR(nn.Module):
    """AIR, Difference-AIR or Discrete AIR, as configured (``what``, ``inference``)."""

    def __init__(self, cfg: AIRConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        w2 = cfg.window * cfg.window
        self.embed = mlp([cfg.pixels, cfg.features], last_activation=True)
        self.rnn = nn.LSTMCell(cfg.features + WHERE_DIM + self.what_dim, cfg.hidden)  # image, previous where, what
        self.pres_head = nn.Linear(cfg.hidden, 1)
        self.where_head = GaussianHead(cfg.hidden, WHERE_DIM)
        for head in (self.pres_head, self.where_head.linear):  # every step starts at the prior's centre
            nn.init.zeros_(head.weight)
        with torch.no_grad():
            self.pres_head.bias.fill_(cfg.pres_init_logit)
            self.where_head.linear.bias.copy_(torch.tensor([cfg.scale_prior, 0.0, 0.0,
                                                            *[cfg.where_init_logvar] * WHERE_DIM]))
        if cfg.what == "gaussian":
            self.what_encoder = nn.Sequential(nn.Flatten(), mlp([w2, cfg.what_hidden], last_activation=True),
                                              GaussianHead(cfg.what_hidden, cfg.z_what))
            self.what_decoder = mlp([cfg.z_what, cfg.what_hidden, w2])
            nn.init.constant_(self.what_decoder[-1].bias, cfg.decoder_bias)
        else:
            self.dvae = DVAE(DVAEConfig(
                image_shape=(1, cfg.window, cfg.window), num_classes=cfg.num_classes, estimator=cfg.class_estimator,
                transform=True, hidden=(cfg.what_hidden,), decoder_hidden=(cfg.what_hidden,),
                baseline_hidden=(cfg.what_hidden,), transform_prior_std=cfg.transform_prior_std))
        # NVIL without dividing its signal by the running std: that would shrink the likelihood's pull on the
        # count by the spread of the loss between scenes (hundreds of nats) and leave the count's KL, whose
        # gradient is not divided, to switch every object off
        self.count_estimator = make_estimator(cfg.count_estimator, cfg.max_steps + 1, context_dim=cfg.features,
                                              hidden=(cfg.baseline_hidden,), normalise=False,
                                              standardised_baseline=True)

    @property
    def what_dim(self) -> int:
        """The size of a step's what as the next step sees it: AIR's z_what, or DAIR's class probabilities
        and transformation t."""
        return self.cfg.num_classes + AFFINE_DIM if self.cfg.what == "prototypes" else self.cfg.z_what

    # --- the generative model --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """n scenes from the model, written as its generative story: the count, every present object's where
        and what, the objects added on the canvas, the pixels."""
        cfg, device = self.cfg, self.pres_head.weight.device
        count = self.count_prior(n, device).sample()  # n ~ p(n) (Bern(ρ) presences)
        canvas = torch.zeros(n, *cfg.image_shape, device=device)
        for i in range(cfg.max_steps):
            where = self.where_prior(n, device).sample()  # z_where,i ~ N((s₀, 0, 0), diag(σ_s², σ_c², σ_c²))
            if cfg.what == "gaussian":
                what = standard_normal((n, cfg.z_what), device).sample()  # z_what,i ~ N(0, I)
                obj = self.what_object(what)
            else:
                c = OneHotCategorical(logits=torch.zeros(n, cfg.num_classes, device=device)).sample()  # c_i ~ Cat(1/K)
                t = self.dvae.transform_prior(n).sample()  # t_i ~ N(identity, σ₀² I)
                obj = self._prototype_object(c, self.dvae.components(t))
            present = (i < count).float().view(n, 1, 1, 1)
            canvas = canvas + present * self.paste(obj, where)
        if cfg.likelihood == "gaussian":  # x ~ N(Σ objects, pixel_var I)
            return canvas + math.sqrt(cfg.pixel_var) * torch.randn_like(canvas)
        return Bernoulli(probs=canvas.clamp(EPS, 1 - EPS)).sample()  # x ~ Bernoulli(clamp(Σ objects))

    def what_object(self, what: torch.Tensor) -> torch.Tensor:
        """AIR's object decoder: the window's pixel probabilities [B, 1, w, w] for codes z_what [B, D]."""
        w = self.cfg.window
        return torch.sigmoid(self.what_decoder(what).float()).view(what.shape[0], 1, w, w)

    # --- the spatial transformer ---------------------------------------------------------------------
    def crop(self, x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """The window of `x` [B, 1, H, W] at `where` [B, 3], resampled to [B, 1, w, w]: window coordinates
        v map to image coordinates v / s + c."""
        s, c = where[:, :1].clamp(min=MIN_SCALE), where[:, 1:]
        zero, inv = torch.zeros_like(s), 1.0 / s
        theta = torch.cat([inv, zero, c[:, :1], zero, inv, c[:, 1:]], -1).view(-1, 2, 3)
        grid = F.affine_grid(theta, [x.shape[0], 1, self.cfg.window, self.cfg.window], align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)

    def paste(self, obj: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """`obj` [B, 1, w, w] placed on an empty canvas [B, 1, H, W] at `where`: the inverse of :meth:`crop`,
        image coordinates u map to window coordinates s (u − c)."""
        s, c = where[:, :1].clamp(min=MIN_SCALE), where[:, 1:]
        zero = torch.zeros_like(s)
        theta = torch.cat([s, zero, -s * c[:, :1], zero, s, -s * c[:, 1:]], -1).view(-1, 2, 3)
        grid = F.affine_grid(theta, [obj.shape[0], *self.cfg.image_shape], align_corners=False)
        return F.grid_sample(obj, grid, align_corners=False)

    def boxes(self, where: torch.Tensor) -> torch.Tensor:
        """The pixel box (x0, y0, x1, y1) of the window at `where` [..., 3]."""
        h, w = self.cfg.image_shape[1:]
        half = 1.0 / where[..., 0].clamp(min=MIN_SCALE)
        cx, cy = where[..., 1], where[..., 2]
        return torch.stack([(cx - half + 1) * w / 2, (cy - half + 1) * h / 2,
                            (cx + half + 1) * w / 2, (cy + half + 1) * h / 2], -1)

    # --- priors --------------------------------------------------------------------------------------
    def where_prior(self, n: int, device):
        cfg = self.cfg
        mean = torch.tensor([cfg.scale_prior, 0.0, 0.0], device=device).expand(n, WHERE_DIM)
        std = torch.tensor([cfg.scale_prior_std, cfg.shift_prior_std, cfg.shift_prior_std], device=device)
        return diag_gaussian(mean, (2 * std.log()).expand(n, WHERE_DIM))

    def count_prior(self, n: int, device) -> Categorical:
        logit = math.log(self.cfg.pres_prior) - math.log1p(-self.cfg.pres_prior)
        return Categorical(logits=count_logits(torch.full((n, self.cfg.max_steps), logit, device=device)))

    # --- inference -----------------------------------------------------------------------------------
    def infer(self, x: torch.Tensor, mode: bool = False) -> Inference:
        """Run the T inference steps on `x`, sampling where and what (their posterior means, and DAIR's most
        probable class, with `mode`)."""
        cfg = self.cfg
        b = x.shape[0]
        h, cell = x.new_zeros(b, cfg.hidden), x.new_zeros(b, cfg.hidden)
        prev = torch.cat([self.where_prior(b, x.device).mean, x.new_zeros(b, self.what_dim)], -1)
        features = self.embed(x.flatten(1))
        first, canvas = features, torch.zeros_like(x)
        out = {k: [] for k in ("pres_logits", "where", "what", "objects", "kl", "log_ratio", "class_logits",
                               "windows", "transforms")}
        for i in range(cfg.max_steps):
            if cfg.inference == "difference" and i > 0:
                features = self.embed((x - canvas.detach()).flatten(1))
            h, cell = self.rnn(torch.cat([features, prev], -1), (h, cell))
            q_where = self.where_head(h)
            where = q_where.mean if mode else q_where.rsample()
            p_where = self.where_prior(b, x.device)
            kl = kl_divergence(q_where.base_dist, p_where.base_dist).sum(-1)
            log_ratio = p_where.log_prob(where) - q_where.log_prob(where)
            window = self.crop(x, where)
            if cfg.what == "gaussian":
                q_what = self.what_encoder(window)
                what = q_what.mean if mode else q_what.rsample()
                p_what = standard_normal(what.shape, x.device)
                kl = kl + kl_divergence(q_what.base_dist, p_what.base_dist).sum(-1)
                log_ratio = log_ratio + p_what.log_prob(what) - q_what.log_prob(what)
                obj = self.what_object(what)
            else:
                obj, what, kl_what, ratio, logits, t = self._discrete_what(window, mode)
                kl, log_ratio = kl + kl_what, log_ratio + ratio
                for k, v in (("class_logits", logits), ("windows", window), ("transforms", t)):
                    out[k].append(v)
            placed = self.paste(obj, where)
            canvas = canvas + placed
            for k, v in (("pres_logits", self.pres_head(h).squeeze(-1).float()), ("where", where), ("what", what),
                         ("objects", placed), ("kl", kl), ("log_ratio", log_ratio)):
                out[k].append(v)
            prev = torch.cat([where, what], -1)
        stacked = {k: torch.stack(v, 1) if v else None for k, v in out.items()}
        return Inference(features=first, **stacked)

    def _discrete_what(self, window: torch.Tensor, mode: bool):
        """DAIR's what-model on a window: a class sampled from the D-VAE-ST's q(c | window) (or its mode) and a
        transformation from q(t | window); returns the warped prototype, what the next step sees (the class
        probabilities and t), the KLs, log p − log q of the sample, the class logits and t."""
        dvae = self.dvae
        dvae.seed_prototypes(window.detach())
        logits = dvae.class_logits(window)
        q_t, p_t = dvae.transform_posterior(window), dvae.transform_prior(window.shape[0])
        t = q_t.mean if mode else q_t.rsample()
        q_c = OneHotCategorical(logits=logits)
        c = F.one_hot(logits.argmax(-1), logits.shape[-1]).float() if mode else q_c.sample()
        kl = dvae.class_kl(logits) + kl_divergence(q_t.base_dist, p_t.base_dist).sum(-1)
        ratio = -math.log(logits.shape[-1]) - q_c.log_prob(c) + p_t.log_prob(t) - q_t.log_prob(t)
        obj = self._prototype_object(c, dvae.components(t))
        return obj, torch.cat([logits.softmax(-1), t], -1), kl, ratio, logits, t

    def _prototype_object(self, code: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
        """Σ_k code_k · component_k for codes [..., B, K] and warped prototypes [B, K, P]: [..., B, 1, w, w]."""
        w = self.cfg.window
        return torch.einsum("...bk,bkp->...bp", code, components).view(*code.shape[:-1], 1, w, w)

    # --- the model's terms ---------------------------------------------------------------------------
    @staticmethod
    def canvases(inf: Inference) -> torch.Tensor:
        """The sum of the first n objects for every count n = 0..T: [B, T + 1, 1, H, W]."""
        return torch.cat([torch.zeros_like(inf.objects[:, :1]), inf.objects.cumsum(1)], 1)

    def log_likelihood(self, x: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        """log p(x | canvas) for canvases [..., B, 1, H, W] (summed objects; broadcast over leading
        dimensions): [..., B]. Bernoulli: the canvas clamped into [EPS, 1 − EPS]; Gaussian: the canvas is the
        mean, not clamped, with the fixed variance ``pixel_var``."""
        if self.cfg.likelihood == "gaussian":
            var = self.cfg.pixel_var
            return (-0.5 * ((x - canvas.float()) ** 2 / var + math.log(2 * math.pi * var))).flatten(-3).sum(-1)
        probs = canvas.clamp(EPS, 1 - EPS)
        return pixel_likelihood(torch.logit(probs), "bernoulli").log_prob(x.expand_as(probs))

    def count_costs(self, x: torch.Tensor, inf: Inference, kl_weight: float = 1.0) -> tuple[torch.Tensor,
                                                                                              torch.Tensor]:
        """(log p(x | objects 1..n), cost(n)) for n = 0..T: two [B, T + 1] tensors."""
        log_px = self.log_likelihood(x, self.canvases(inf).transpose(0, 1)).T
        kl = torch.cat([torch.zeros_like(inf.kl[:, :1]), inf.kl.cumsum(1)], 1)
        return log_px, -log_px + kl_weight * kl

    def count_posterior(self, inf: Inference) -> Categorical:
        return Categorical(logits=count_logits(inf.pres_logits))

    def elbo_terms(self, x) -> ElboTerms:
        """The ELBO with the count summed out exactly: E_q(n)[log p(x | n objects)], and the KLs [B, T + 1]:
        the count's, then step i's where and what weighted by q(n ≥ i)."""
        inf = self.infer(x)
        q = self.count_posterior(inf)
        log_px, _ = self.count_costs(x, inf)
        kl_count = kl_divergence(q, self.count_prior(x.shape[0], x.device))
        return ElboTerms((q.probs * log_px).sum(-1), self._kl_dims(inf, q, kl_count))

    @staticmethod
    def _kl_dims(inf: Inference, q: Categorical, kl_count: torch.Tensor) -> torch.Tensor:
        """The ELBO's KL terms [B, T + 1]: the count's, then step i's where and what weighted by q(n ≥ i)."""
        used = 1 - q.probs.cumsum(-1)[:, :-1]  # q(n ≥ i), i = 1..T
        return torch.cat([kl_count.unsqueeze(-1), used * inf.kl], -1)

    def log_importance_weights(self, x, k: int) -> torch.Tensor:
        """[k, B]: log p(x, n, z) − log q(n, z | x) for k joint samples of the count and every step's latents."""
        out = []
        prior = self.count_prior(x.shape[0], x.device)
        for _ in range(k):
            inf = self.infer(x)
            q = self.count_posterior(inf)
            n = q.sample()
            log_px, _ = self.count_costs(x, inf)
            ratio = torch.cat([torch.zeros_like(inf.log_ratio[:, :1]), inf.log_ratio.cumsum(1)], 1)
            pick = lambda v: v.gather(1, n[:, None]).squeeze(1)  # noqa: E731
            out.append(pick(log_px) + pick(ratio) + prior.log_prob(n) - q.log_prob(n))
        return torch.stack(out)

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Negative ELBO (batch mean); the count through the configured estimator. With free bits λ > 0 the
        KL terms of :meth:`elbo_terms` (the count's, each step's weighted by q(n ≥ i)) are penalised as
        :func:`c2f.objectives.kl_penalty` does: their plain batch mean is replaced by Σ_j max(λ, E_batch KL_j)
        (exactly so with the exact count estimator; in expectation with NVIL)."""
        inf = self.infer(x)
        q = self.count_posterior(inf)
        log_px, cost = self.count_costs(x, inf, kl_weight)
        est = self.count_estimator(q.logits, lambda z: (z * cost).sum(-1), context=inf.features.detach())
        kl_count = kl_divergence(q, self.count_prior(x.shape[0], x.device))
        loss = est.objective + kl_weight * kl_count
        kl_dims = self._kl_dims(inf, q, kl_count)
        if free_bits > 0:
            loss = loss + kl_weight * (kl_penalty(kl_dims, free_bits) - kl_penalty(kl_dims))
        scalars = {}
        if self.cfg.what == "prototypes":
            loss = loss + self._class_terms(x, inf, q.probs.detach())
            marginal_kl = self._class_marginal_kl(inf, q.probs.detach())
            loss = loss + self.cfg.class_marginal_weight * marginal_kl
            scalars["marginal_kl"] = marginal_kl.detach()
        count = (q.probs * torch.arange(self.cfg.max_steps + 1, device=x.device)).sum(-1)
        scalars.update({"elbo": -(est.loss + kl_count).mean(), "recon": -(q.probs * log_px).sum(-1).mean().detach(),
                        "kl": kl_dims.sum(-1).mean().detach(), "kl_count": kl_count.mean(), "count": count.mean(),
                        **{f"est_{k}": v for k, v in est.stats.items()}})
        return loss.mean(), scalars

    @torch.no_grad()
    def latent_means(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior along the mean path: q(n) of the counts 0..T, then every step's z_where and z_what
        means (DAIR: its class probabilities and t): [B, T + 1 + T (3 + D)]."""
        inf = self.infer(x, mode=True)
        return torch.cat([self.count_posterior(inf).probs, torch.cat([inf.where, inf.what], -1).flatten(1)], -1)

    def _class_marginal_kl(self, inf: Inference, q_count: torch.Tensor) -> torch.Tensor:
        """KL(q̄ ‖ uniform) of the batch's mean class probabilities over the objects the counts use (each step
        weighted by q(n ≥ i)): chapter 05's regulariser against putting every object into one class. Outside
        the ELBO."""
        used = 1 - q_count.cumsum(-1)[:, :-1]  # [B, T]
        probs = inf.class_logits.softmax(-1)
        return uniform_kl((used.unsqueeze(-1) * probs).sum((0, 1)) / used.sum().clamp(min=1e-6))

    def _class_terms(self, x, inf: Inference, q_count: torch.Tensor) -> torch.Tensor:
        """DAIR: zero-valued terms [B] that carry the class estimator's gradient. Step i's class is scored the
        way the D-VAE-ST scores a class, through its window: the loss of a code is E_q(n)[−log p(window of x |
        window of the other objects + the warped prototype)] over the counts n ≥ i that use step i, with
        every other latent held at its sampled value (all detached: only the class logits learn from it).
        Seen through the window, the K codes cost K small likelihoods instead of K pasted canvases."""
        total = torch.zeros_like(x[:, 0, 0, 0])
        prefix = self.canvases(inf).detach()  # [B, T + 1, 1, H, W]
        b, t = x.shape[0], self.cfg.max_steps
        for i in range(t):
            where = inf.where[:, i].detach()
            comps = self.dvae.components(inf.transforms[:, i]).detach()  # [B, K, w * w]
            others = (prefix[:, i + 1:] - inf.objects[:, i].detach().unsqueeze(1)).flatten(0, 1)
            others = self.crop(others, where.repeat_interleave(t - i, 0)).view(b, t - i, *comps.shape[-1:])
            seen = self.crop(x, where).flatten(1).unsqueeze(1)  # [B, 1, w * w]
            weights = q_count[:, i + 1:]  # q(n) for the counts that draw step i

            def f(code, comps=comps, others=others, seen=seen, weights=weights):
                obj = torch.einsum("...bk,bkp->...bp", code, comps).unsqueeze(-2)  # [..., B, 1, w * w]
                mean = others + obj
                if self.cfg.likelihood == "gaussian":
                    nll = (0.5 * (seen - mean) ** 2 / self.cfg.pixel_var).sum(-1)  # (its constant cancels)
                else:
                    probs = mean.clamp(EPS, 1 - EPS)
                    nll = -torch.distributions.Bernoulli(probs=probs, validate_args=False).log_prob(
                        seen.expand_as(probs)).sum(-1)
                return (weights * nll).sum(-1)

            est = self.dvae.estimator(inf.class_logits[:, i], f, context=inf.windows[:, i].detach().flatten(1))
            total = total + (est.objective - est.objective.detach())
        return total

    # --- what the chapter reads off ------------------------------------------------------------------
    @torch.no_grad()
    def detect(self, x: torch.Tensor) -> dict:
        """Posterior modes: the most probable count, the boxes of the steps it uses, (DAIR) their classes, and
        the reconstruction from those objects."""
        inf = self.infer(x, mode=True)
        count = self.count_posterior(inf).probs.argmax(-1)
        present = torch.arange(self.cfg.max_steps, device=x.device) < count[:, None]
        out = {"count": count, "present": present, "boxes": self.boxes(inf.where),
               "reconstruction": self.canvases(inf)[torch.arange(x.shape[0]), count].clamp(0, 1)}
        if self.cfg.what == "prototypes":
            out["classes"] = inf.class_logits.argmax(-1)
        return out

    def with_steps(self, steps: int) -> "AIR":
        """The same network (its parameters shared, not copied) run for `steps` inference steps instead of T:
        a model trained with T steps tested on scenes that may need more (the extrapolation test)."""
        import copy
        from dataclasses import replace

        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        clone = copy.copy(self)
        clone.cfg = replace(self.cfg, max_steps=steps)
        return clone

    @torch.no_grad()
    def sampled_count(self, x: torch.Tensor) -> torch.Tensor:
        """A count drawn from q(n | x) (the thesis's single-sample metric)."""
        return self.count_posterior(self.infer(x)).sample()
