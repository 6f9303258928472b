"""Convolutional DRAW (Gregor et al. 2016, "Towards Conceptual Compression"): a recurrent VAE that builds the
image on a canvas over T iterations, with convolutional LSTMs and no attention.

One iteration t = 1..T, all maps at 1/4 of the image resolution except the canvas r:

    ε_t   = x − mean(p(x | r_{t−1}))                              reconstruction error
    h^e_t = ConvLSTM^e([read(x, ε_t), h^d_{t−1}], h^e_{t−1})      the encoder sees both previous states
    q_t   = q(z_t | h^e_t),   p_t = p(z_t | h^d_{t−1})             diagonal Gaussians; the prior is learned
    h^d_t = ConvLSTM^d(z_t, h^d_{t−1})
    r_t   = r_{t−1} + write(h^d_t)                                 additive canvas (in logit / location space)

with learned r_0, h^e_0, h^d_0 and the loss −log p(x | r_T) + Σ_t KL(q_t ‖ p_t) (the negative ELBO, KLs in
closed form). ``iterate`` runs the recurrence with any rule for choosing z_t (posterior sample or mean, prior
mean or sample, or quantised latents in :mod:`c2f.codec`), so the same code trains, evaluates, compresses and
"continues from the prior".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from torch.distributions import kl_divergence

from c2f.nn import LOGVAR_BOUND, ImageConfig, bound_logvar, diag_gaussian, likelihood_channels, pixel_likelihood
from c2f.objectives import CodeOrder, ElboTerms, negative_elbo

CHOICES = ("posterior_sample", "posterior_mean", "prior_mean", "prior_sample")


@dataclass
class ConvDRAWConfig(ImageConfig):
    iterations: int = 6  # T
    hidden: int = 32  # ConvLSTM channels (encoder and decoder)
    latent_channels: int = 2  # channels of z_t; z_t has latent_channels × (H/4) × (W/4) latents
    kernel: int = 3  # ConvLSTM kernel size
    read_channels: int = 32  # width of the read (image → 1/4 resolution) and write networks
    likelihood: str = "bernoulli"  # or "discretized_logistic" for 8-bit grey levels
    logvar_bound: float = LOGVAR_BOUND  # q_t's and p_t's log-variances are squashed softly into (−b, b)
    image_shape: tuple[int, int, int] = (1, 28, 28)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        c, h, w = self.image_shape
        return (self.latent_channels, h // 4, w // 4)

    @property
    def latents_per_iteration(self) -> int:
        return int(torch.Size(self.latent_shape).numel())

    @property
    def total_latents(self) -> int:
        return self.iterations * self.latents_per_iteration


class ConvLSTMCell(nn.Module):
    """An LSTM whose gates are convolutions (Shi et al. 2015): one conv of [input, h] gives i, f, o, g."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3):
        super().__init__()
        self.gates = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x, state):
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvDRAW(nn.Module):
    """Convolutional DRAW with a learned, state-dependent prior and an additive canvas."""

    def __init__(self, cfg: ConvDRAWConfig):
        super().__init__()
        if cfg.likelihood not in ("bernoulli", "discretized_logistic"):
            raise ValueError(f"unknown likelihood {cfg.likelihood!r}; choose 'bernoulli' or 'discretized_logistic'")
        if cfg.iterations < 1 or cfg.image_shape[1] % 4 or cfg.image_shape[2] % 4:
            raise ValueError("need iterations >= 1 and an image height and width divisible by 4")
        self.cfg = cfg
        c, h, w = cfg.image_shape
        hid, zc, rc = cfg.hidden, cfg.latent_channels, cfg.read_channels
        out = c * likelihood_channels(cfg.likelihood)
        self.read = nn.Sequential(nn.Conv2d(2 * c, rc, 4, 2, 1), nn.ELU(), nn.Conv2d(rc, rc, 4, 2, 1), nn.ELU())
        self.encoder = ConvLSTMCell(rc + hid, hid, cfg.kernel)
        self.decoder = ConvLSTMCell(zc, hid, cfg.kernel)
        self.posterior_head = nn.Conv2d(hid, 2 * zc, cfg.kernel, padding=cfg.kernel // 2)
        self.prior_head = nn.Conv2d(hid, 2 * zc, cfg.kernel, padding=cfg.kernel // 2)
        self.write = nn.Sequential(nn.ConvTranspose2d(hid, rc, 4, 2, 1), nn.ELU(), nn.ConvTranspose2d(rc, out, 4, 2, 1))
        self.canvas0 = nn.Parameter(torch.zeros(out, h, w))
        self.states0 = nn.Parameter(torch.zeros(4, hid, h // 4, w // 4))  # h^e, c^e, h^d, c^d

    @property
    def num_groups(self) -> int:
        """The iterations are the ordered groups of :class:`c2f.objectives.Progressive`."""
        return self.cfg.iterations

    @property
    def default_groups(self) -> int:
        """All iterations are decoded when none is given."""
        return self.cfg.iterations

    #: the iterations are ordered by construction: each refines the canvas the earlier ones drew
    ordered_groups = True

    # --- the model's distributions -------------------------------------------------------------------
    def likelihood(self, canvas):
        """p(x | r): the pixel distribution whose parameters are the canvas."""
        return pixel_likelihood(canvas, self.cfg.likelihood)

    def image(self, canvas):
        """The image a canvas shows: Bernoulli probabilities or the logistic's location, in [0, 1]."""
        return self.likelihood(canvas).base_dist.mean.clamp(0, 1)

    def _gaussian(self, params):
        """q_t or p_t from a head's output map: the first half of the channels the mean, the second the
        log-variance, bounded softly like :class:`c2f.nn.GaussianHead`'s; flat over the latents."""
        mean, logvar = params.float().chunk(2, 1)
        return diag_gaussian(mean.flatten(1), bound_logvar(logvar, self.cfg.logvar_bound).flatten(1))

    def iterate(self, x: torch.Tensor | None, choose: str | Callable = "posterior_sample", steps: int | None = None,
                batch: int | None = None) -> Iterator[dict]:
        """Run iterations 1..`steps` (default T) and yield, per iteration, ``q`` (None without `x`), ``p``, the
        chosen ``z`` (flat, [B, latents_per_iteration]) and the ``canvas`` r_t. `choose` is one of
        :data:`CHOICES` or a function (t, q, p) -> z, t counted from 0; without `x` (decoding) only the prior
        rules or a function that ignores q can be used, and `batch` gives the batch size."""
        cfg = self.cfg
        b = x.shape[0] if x is not None else int(batch)
        canvas = self.canvas0.expand(b, *self.canvas0.shape)
        he, ce, hd, cd = (s.expand(b, *s.shape) for s in self.states0)
        for t in range(cfg.iterations if steps is None else steps):
            p = self._gaussian(self.prior_head(hd))
            q = None
            if x is not None:
                error = x - self.image(canvas)
                he, ce = self.encoder(torch.cat([self.read(torch.cat([x, error], 1)), hd], 1), (he, ce))
                q = self._gaussian(self.posterior_head(he))
            z = self._choose(choose, t, q, p)
            hd, cd = self.decoder(z.view(b, *cfg.latent_shape), (hd, cd))
            canvas = canvas + self.write(hd)
            yield {"q": q, "p": p, "z": z, "canvas": canvas}

    @staticmethod
    def _choose(choose, t, q, p):
        if callable(choose):
            return choose(t, q, p)
        if choose.startswith("posterior") and q is None:
            raise ValueError(f"{choose!r} needs the image x")
        return {"posterior_sample": lambda: q.rsample(), "posterior_mean": lambda: q.mean,
                "prior_mean": lambda: p.mean, "prior_sample": lambda: p.sample()}[choose]()

    # --- objectives ----------------------------------------------------------------------------------
    def elbo_terms(self, x, groups: int | None = None):
        """Per-example log p(x | r_T), the KL of every iteration ``kl_dims`` [B, T] (closed form), their sum and
        the ELBO (one posterior sample). With ``groups`` = t only the first t iterations are run: the ELBO of the
        model that stops there."""
        steps = list(self.iterate(x, "posterior_sample", steps=groups))
        kl_dims = torch.stack([kl_divergence(s["q"], s["p"]) for s in steps], -1)
        if groups is not None:
            kl_dims = nn.functional.pad(kl_dims, (0, self.cfg.iterations - len(steps)))
        log_px = self.likelihood(steps[-1]["canvas"]).log_prob(x)
        return ElboTerms(log_px, kl_dims)

    def kl_groups(self, kl_dims):
        """The KL per iteration (``kl_dims`` already is one column per iteration)."""
        return kl_dims

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """The negative ELBO averaged over the batch; free bits apply per iteration."""
        return negative_elbo(self.elbo_terms(x), kl_weight, free_bits)

    @torch.no_grad()
    def log_importance_weights(self, x, k: int, groups: int | None = None):
        """log p(x, z_1..T) − log q(z_1..T | x) for k joint samples of all iterations: [k, B]."""
        b = x.shape[0]
        xk = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        logw = 0.0
        for s in self.iterate(xk, "posterior_sample", steps=groups):
            logw = logw + s["p"].log_prob(s["z"]) - s["q"].log_prob(s["z"])
        logw = logw + self.likelihood(s["canvas"]).log_prob(xk)
        return logw.view(k, b)

    @torch.no_grad()
    def latent_means(self, x):
        """Posterior means of all iterations along the mean path, concatenated: [B, T × latents_per_iteration]."""
        return torch.cat([s["q"].mean for s in self.iterate(x, "posterior_mean")], -1)

    def code_order(self, kl_per_dim) -> CodeOrder:
        """Iterations 1..T, coarse first; after a prefix the decoder continues with the prior's means."""
        t_max, n = self.cfg.iterations, self.cfg.latents_per_iteration

        def log_px(x, g):
            choose = lambda t, q, p: q.mean if t < g else p.mean  # noqa: E731 - the rest: the prior's mean
            return self.likelihood(list(self.iterate(x, choose))[-1]["canvas"]).log_prob(x)
        def sample(x, g, image=True):  # iterations < g from q, the rest from the prior given them
            canvas = list(self.iterate(x, lambda t, q, p: q.sample() if t < g else p.sample()))[-1]["canvas"]
            return self.likelihood(canvas).log_prob(x), (self.image(canvas) if image else None)
        return CodeOrder("iterations 1..T", [f"iteration {t}" for t in range(1, t_max + 1)],
                         [list(range(t * n, (t + 1) * n)) for t in range(t_max)], [[t] for t in range(t_max)], log_px,
                         sample=sample, code_sample=lambda x: torch.cat([s["z"] for s in self.iterate(x)], -1))

    # --- images --------------------------------------------------------------------------------------
    @torch.no_grad()
    def reconstructions(self, x, choose: str | Callable = "posterior_mean") -> list[torch.Tensor]:
        """The image after each iteration t = 1..T (latents chosen by `choose`)."""
        return [self.image(s["canvas"]) for s in self.iterate(x, choose)]

    @torch.no_grad()
    def reconstruct(self, x, groups: int | None = None):
        """The image after `groups` iterations (all by default) at the posterior means."""
        return self.image([s for s in self.iterate(x, "posterior_mean", steps=groups)][-1]["canvas"])

    @torch.no_grad()
    def continue_from_prior(self, x, t: int, rest: str = "prior_mean"):
        """Transmit t iterations (posterior means), then let the decoder continue to T with the prior mean or
        prior samples (``rest``): the image a receiver of the first t iterations sees."""
        if rest not in ("prior_mean", "prior_sample"):
            raise ValueError(f"rest must be 'prior_mean' or 'prior_sample', got {rest!r}")
        choose = lambda i, q, p: q.mean if i < t else (p.mean if rest == "prior_mean" else p.sample())  # noqa: E731
        return self.image(list(self.iterate(x, choose))[-1]["canvas"])

    @torch.no_grad()
    def decode_latents(self, zs: list[torch.Tensor]):
        """The image decoded from given latents of every iteration (flat [B, latents_per_iteration] each; the
        decoder alone, so a changed latent changes only what it feeds)."""
        steps = list(self.iterate(None, lambda i, q, p: zs[i], steps=len(zs), batch=zs[0].shape[0]))
        return self.image(steps[-1]["canvas"])

    @torch.no_grad()
    def sample(self, n: int):
        """Images generated from the prior (samples at every iteration)."""
        device = self.canvas0.device
        return self.image(list(self.iterate(None, "prior_sample", batch=n))[-1]["canvas"]).to(device)
