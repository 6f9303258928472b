"""Hierarchical VAEs with a top-down generative chain of latent layers z_L → … → z_1 → x (layer 1 nearest x).

* :class:`HVAE` every generative layer depends on *all* layers above it (a deterministic top-down state
  carries them), and so does the decoder; inference is bottom-up, q(z_1 | x) Π_l q(z_l | z_<l, x).
* :class:`MarkovHVAE` each layer depends only on the one above, p(z_l | z_l+1), p(x | z_1); inference is a
  bottom-up Markov chain q(z_1 | x) Π_l q(z_l | z_l-1).
* :class:`LadderVAE` (Sønderby et al. 2016) the Markov generative model, with inference in two passes: a
  deterministic bottom-up pass gives an estimate (μ̂_l, σ̂_l²) per layer; then a top-down pass samples
  z_L ~ N(μ̂_L, σ̂_L²) and, for l < L, q(z_l | ·) = the precision-weighted combination of (μ̂_l, σ̂_l²) and
  the top-down prior p(z_l | z_l+1), whose network it shares with the generative model.

The three share one module layout (``up`` blocks and ``q_heads`` for inference, ``down`` blocks and
``p_heads`` for the prior, one ``decoder``) and one top-down pass, :meth:`TopDownVAE.top_down`. The KL of a
layer is in closed form where the sampling order allows (every LVAE layer; the top layer of HVAE and
Markov HVAE) and a single-sample log q − log p otherwise (z_l is drawn before the layers above it that
its prior depends on).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import kl_divergence

from c2f.models.layered import (_check_layer, draw, layered_loss, layers_top_first, normal, precision_weighted,
                                standard_params)
from c2f.nn import LOGVAR_BOUND, GaussianHead, ImageConfig, mlp, pixel_likelihood
from c2f.objectives import CodeOrder, ElboTerms


@dataclass
class HierarchicalConfig(ImageConfig):
    latent_dims: tuple[int, ...] = (32, 16, 8)  # units of z_1 (nearest x) .. z_L
    hidden: tuple[int, ...] = (512, 256, 128)  # width of the deterministic block of each layer
    block_layers: int = 2  # dense layers per deterministic block
    activation: str = "elu"
    batch_norm: bool = True
    likelihood: str = "bernoulli"
    image_shape: tuple[int, int, int] = (1, 28, 28)

    def __post_init__(self):
        self.latent_dims, self.hidden = tuple(self.latent_dims), tuple(self.hidden)
        if len(self.latent_dims) != len(self.hidden) or not self.latent_dims:
            raise ValueError(f"latent_dims {self.latent_dims} and hidden {self.hidden} need one entry per layer")
        if min(self.latent_dims) < 1 or min(self.hidden) < 1 or self.block_layers < 1:
            raise ValueError("latent_dims, hidden and block_layers must be positive")


class TopDownVAE(nn.Module):
    """The shared structure; subclasses choose the inputs of the blocks and the inference pass."""

    dependent = False  # HVAE: the top-down state (all layers above) feeds every prior and the decoder

    def __init__(self, cfg: HierarchicalConfig):
        super().__init__()
        self.cfg = cfg
        self.layer_sizes = cfg.latent_dims
        d, h, L = cfg.latent_dims, cfg.hidden, len(cfg.latent_dims)
        self.up = nn.ModuleList(self._block(self._up_in(l), h[l]) for l in range(L))
        self.q_heads = nn.ModuleList(GaussianHead(h[l], d[l], LOGVAR_BOUND) for l in range(L))
        # down[l] computes the prior of layer l from the layers above it (l = 0..L-2)
        self.down = nn.ModuleList(self._block(self._down_in(l), h[l]) for l in range(L - 1))
        self.p_heads = nn.ModuleList(GaussianHead(h[l], d[l], LOGVAR_BOUND) for l in range(L - 1))
        self.decoder = nn.Sequential(self._block(self._down_in(-1), h[0]), nn.Linear(h[0], cfg.pixels))

    def _block(self, n_in: int, width: int):
        return mlp([n_in] + [width] * self.cfg.block_layers, self.cfg.activation, self.cfg.batch_norm,
                   last_activation=True)

    def _up_in(self, l: int) -> int:
        raise NotImplementedError

    def _down_in(self, l: int) -> int:
        """Input width of the block that makes the prior of layer l (l = −1: the decoder)."""
        above = self.cfg.latent_dims[l + 1]
        has_state = self.dependent and l + 1 < len(self.cfg.latent_dims) - 1
        return above + (self.cfg.hidden[l + 1] if has_state else 0)

    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes)

    # --- the generative (top-down) pass ---------------------------------------------------------------
    def top_down(self, n: int, choose, device):
        """Run the generative chain from the top for a batch of n: at each layer l (0-based) the prior's
        (mean, log-variance) is computed from the layers above and ``choose(l, prior)`` returns z_l.
        Returns the latents, the priors and the pixel logits."""
        L = self.num_layers
        zs, priors, state = [None] * L, [None] * L, None
        for l in reversed(range(L)):
            if l == L - 1:
                priors[l] = standard_params(n, self.layer_sizes[l], device)
            else:
                state = self.down[l](self._down_input(zs[l + 1], state))
                priors[l] = self.p_heads[l].params(state)
            zs[l] = choose(l, priors[l])
        logits = self.decoder(self._down_input(zs[0], state))
        return zs, priors, logits

    def _down_input(self, z_above, state):
        return z_above if (state is None or not self.dependent) else torch.cat([state, z_above], -1)

    # --- inference --------------------------------------------------------------------------------------
    def _pass(self, x, sample: bool = True):
        """One pass through inference and generation: latents, posteriors, priors, logits and, per layer,
        whether the KL may be taken in closed form."""
        raise NotImplementedError

    def likelihood(self, logits):
        """p(x | z_1) from the decoder's pixel logits."""
        return pixel_likelihood(logits.view(-1, *self.cfg.image_shape), self.cfg.likelihood)

    def elbo_terms(self, x) -> ElboTerms:
        """Per-example log p(x|z) and KL of every latent unit (layer order), from one sample."""
        zs, qs, ps, logits, closed = self._pass(x)
        log_px = self.likelihood(logits).log_prob(x)
        kls = []
        for z, q, p, exact in zip(zs, qs, ps, closed):
            kls.append(kl_divergence(normal(q), normal(p)) if exact else normal(q).log_prob(z) - normal(p).log_prob(z))
        return ElboTerms(log_px, torch.cat(kls, -1), zs=zs, means=[q[0] for q in qs])

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Negative ELBO with the KL weighted by `kl_weight` (warm-up); logs the KL of every layer."""
        return layered_loss(self.elbo_terms(x), self.layer_sizes, kl_weight, free_bits)

    def log_importance_weights(self, x, k: int):
        """log p(x, z_i) − log q(z_i | x) for k joint samples of all layers: shape [k, B]."""
        b = x.shape[0]
        xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        zs, qs, ps, logits, _ = self._pass(xs)
        log_w = self.likelihood(logits).log_prob(xs)
        for z, q, p in zip(zs, qs, ps):
            log_w = log_w + normal(p).log_prob(z).sum(-1) - normal(q).log_prob(z).sum(-1)
        return log_w.view(k, b)

    def posterior_means(self, x) -> list[torch.Tensor]:
        """The posterior mean of every layer along the mean path (each layer at its mean given the others'
        means)."""
        return [q[0] for q in self._pass(x, sample=False)[1]]

    def latent_means(self, x):
        return torch.cat(self.posterior_means(x), -1)

    def code_order(self, kl_per_dim) -> CodeOrder:
        """The layers from the top down; the layers below a prefix at their conditional prior's mean."""
        L = self.num_layers

        def log_px(x, g):
            means = self.posterior_means(x)
            choose = lambda l, p: means[l] if l >= L - g else p[0]  # noqa: E731 - lower layers: conditional prior mean
            return self.likelihood(self.top_down(len(x), choose, x.device)[2]).log_prob(x)

        def sample(x, g, image=True):  # the top g layers drawn from q, the layers below from the conditional prior
            zs = self._pass(x)[0]
            p = self.likelihood(self.top_down(len(x), lambda l, prior: zs[l] if l >= L - g else draw(prior),
                                              x.device)[2])
            return p.log_prob(x), (p.mean if image else None)
        return layers_top_first(self.layer_sizes, log_px, sample, lambda x: torch.cat(self._pass(x)[0], -1))

    # --- images --------------------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruct(self, x):
        """Pixel probabilities along the posterior mean path."""
        return self.likelihood(self._pass(x, sample=False)[3]).mean

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0):
        """Ancestral samples; `temperature` scales the prior standard deviations."""
        device = next(self.parameters()).device

        choose = lambda l, p: normal(p, temperature).rsample()  # noqa: E731
        return self.likelihood(self.top_down(n, choose, device)[2]).mean

    @torch.no_grad()
    def edit_layer(self, x, layer: int, edit):
        """Decode x with the layers above `layer` (1-based) at their posterior means, layer `layer` set to
        ``edit(posterior mean, conditional prior)`` and the layers below at their conditional prior means
        given the new layer: keeping a lower layer fixed while its parent changes is not a draw from a
        top-down model, so the lower layers follow."""
        _check_layer(layer, self.num_layers)
        means = self.posterior_means(x)

        def choose(l, p):
            if l > layer - 1:
                return means[l]
            return edit(means[l], p) if l == layer - 1 else p[0]
        return self.likelihood(self.top_down(len(x), choose, x.device)[2]).mean


class HVAE(TopDownVAE):
    """Bottom-up inference q(z_l | z_<l, x); top-down generation with every layer and the decoder
    depending on all layers above (through a deterministic top-down state)."""

    dependent = True

    def _up_in(self, l):
        return self.cfg.pixels if l == 0 else self.cfg.hidden[l - 1] + self.cfg.latent_dims[l - 1]

    def _pass(self, x, sample=True):
        h, zs, qs = x.flatten(1), [], []
        for l in range(self.num_layers):
            h = self.up[l](h if l == 0 else torch.cat([h, zs[-1]], -1))
            qs.append(self.q_heads[l].params(h))
            zs.append(draw(qs[-1], sample))
        _, ps, logits = self.top_down(len(x), lambda l, p: zs[l], x.device)
        closed = [l == self.num_layers - 1 for l in range(self.num_layers)]
        return zs, qs, ps, logits, closed


class MarkovHVAE(TopDownVAE):
    """Markov chains both ways: q(z_1 | x) Π q(z_l | z_l-1), and p(z_L) Π p(z_l | z_l+1) p(x | z_1)."""

    def _up_in(self, l):
        return self.cfg.pixels if l == 0 else self.cfg.latent_dims[l - 1]

    def _pass(self, x, sample=True):
        zs, qs = [], []
        for l in range(self.num_layers):
            qs.append(self.q_heads[l].params(self.up[l](x.flatten(1) if l == 0 else zs[-1])))
            zs.append(draw(qs[-1], sample))
        _, ps, logits = self.top_down(len(x), lambda l, p: zs[l], x.device)
        closed = [l == self.num_layers - 1 for l in range(self.num_layers)]
        return zs, qs, ps, logits, closed


class LadderVAE(TopDownVAE):
    """Sønderby et al.'s Ladder VAE: deterministic bottom-up pass, then top-down sampling from the
    precision-weighted combination of the bottom-up estimate and the top-down prior."""

    def _up_in(self, l):
        return self.cfg.pixels if l == 0 else self.cfg.hidden[l - 1]

    def _pass(self, x, sample=True):
        d, estimates = x.flatten(1), []
        for l in range(self.num_layers):
            d = self.up[l](d)
            estimates.append(self.q_heads[l].params(d))
        qs = [None] * self.num_layers

        def choose(l, p):
            qs[l] = estimates[l] if l == self.num_layers - 1 else precision_weighted(estimates[l], p)
            return draw(qs[l], sample)
        zs, ps, logits = self.top_down(len(x), choose, x.device)
        return zs, qs, ps, logits, [True] * self.num_layers


HIERARCHICAL = {"hvae": HVAE, "markov_hvae": MarkovHVAE, "lvae": LadderVAE}


def make_hierarchical(kind: str, cfg: HierarchicalConfig) -> TopDownVAE:
    """One of :data:`HIERARCHICAL` by name."""
    if kind not in HIERARCHICAL:
        raise ValueError(f"unknown hierarchical model {kind!r}; choose one of {sorted(HIERARCHICAL)}")
    return HIERARCHICAL[kind](cfg)
