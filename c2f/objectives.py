"""What a model must provide to be trained and evaluated, and the objective helpers the models share.

Every model follows :class:`Trainable` (the training loop, :func:`c2f.train.fit`, needs only its ``loss``);
every latent-variable model also follows :class:`LatentVariableModel` (what :mod:`c2f.evaluate` needs),
returning its ELBO terms as one :class:`ElboTerms`. Five optional parts, written as protocols of their own:

* :class:`Progressive` ``num_groups`` ordered latent groups, any prefix of which can be decoded
  (``groups=g``): the progressive VAEs' groups, Conv-DRAW's iterations;
* :class:`CoarseToFine` ``code_order(kl_per_dim)``: the model's code as parts ordered coarse first
  (:class:`CodeOrder`), what chapter 08 (:mod:`c2f.synthesis`) measures every family by;
* :class:`MultiStep` ``steps_per_batch`` = n > 1: the loss takes ``part=0..n-1`` and the loop takes one
  optimizer step after each part (e.g. one per latent group);
* :class:`StageWise` ``num_stages`` and ``set_stage(s)``: trained one stage after another
  (:func:`c2f.train.train_stages`), each stage freezing what the earlier ones trained;
* :class:`Supervised` ``uses_labels = True``: the loss also takes the minibatch's labels ``y`` (the
  classifier that measures what a latent edit does to the class).

The helpers :func:`kl_penalty` (free bits) and :func:`kl_weight` (warm-up) are the parts of the objective
that the models and the loop share.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

import torch

Scalars = dict[str, torch.Tensor]


@dataclass
class ElboTerms:
    """The per-example terms of a model's ELBO from one posterior sample (shapes for a batch of B):

    ``log_px`` [B] the reconstruction term log p(x | z); ``kl_dims`` [B, J] the KL of each latent unit (or
    group: a transformation, a class), in the model's order; ``kl`` = Σ_j kl_dims and ``elbo`` = log_px − kl.
    Models with latent layers also give, per layer l = 1..L, the sample ``zs[l]`` the terms were computed
    from and the posterior mean ``means[l]`` (for losses built on the same sample, and active units).
    """

    log_px: torch.Tensor
    kl_dims: torch.Tensor
    zs: list[torch.Tensor] | None = None
    means: list[torch.Tensor] | None = None

    @property
    def kl(self) -> torch.Tensor:
        return self.kl_dims.sum(-1)

    @property
    def elbo(self) -> torch.Tensor:
        return self.log_px - self.kl


@runtime_checkable
class Trainable(Protocol):
    """A model the training loop can train: the loss to minimise on a minibatch (a scalar tensor) and the
    scalars to log (0-dim tensors; they stay on the device until the loop logs them). `kl_weight` is the
    warm-up weight of the KL term and `free_bits` the λ of :func:`kl_penalty`; a model without a KL term
    ignores both."""

    def loss(self, x: torch.Tensor, kl_weight: float = 1.0, free_bits: float = 0.0) -> tuple[torch.Tensor,
                                                                                              Scalars]: ...


@runtime_checkable
class LatentVariableModel(Trainable, Protocol):
    """A trainable model with a likelihood: what :mod:`c2f.evaluate` computes ELBO, NLL and active units
    from. Models that can decode a prefix of their latents accept ``groups=g`` in the first two
    (:class:`Progressive`)."""

    def elbo_terms(self, x: torch.Tensor) -> ElboTerms:
        """The ELBO's terms per example, from one posterior sample, KLs in closed form where possible."""

    def log_importance_weights(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """log p(x, z_i) − log q(z_i | x) for k samples z_i ~ q(z | x): shape [k, B]."""

    def latent_means(self, x: torch.Tensor) -> torch.Tensor:
        """E_q[z | x] of every latent unit, concatenated in the order of ``kl_dims``: [B, D]."""


@runtime_checkable
class Progressive(LatentVariableModel, Protocol):
    """A model whose code comes in ``num_groups`` = G ordered groups, any prefix of which can be decoded.

    With ``groups=g`` the ELBO's terms and the importance weights are those of the model that *stops after
    group g*: the groups after g are left out (they add nothing to the decoder: an absent group of a
    progressive VAE, an iteration of Conv-DRAW that never writes to the canvas), and their KL columns are 0.
    ``default_groups`` is how many groups are decoded when none is given (the trained ones), and
    ``kl_groups(kl_dims)`` sums the KL columns of each group: [..., G]. ``ordered_groups`` says whether the
    training orders the groups, coarse first (False for a model trained on the full ELBO alone, whose groups
    have no order of their own: its ``code_order`` ranks them by KL, and a chapter compares it in that order)."""

    num_groups: int
    default_groups: int
    ordered_groups: bool

    def kl_groups(self, kl_dims: torch.Tensor) -> torch.Tensor: ...

    def elbo_terms(self, x: torch.Tensor, groups: int | None = None) -> ElboTerms: ...

    def log_importance_weights(self, x: torch.Tensor, k: int, groups: int | None = None) -> torch.Tensor: ...


@dataclass
class CodeOrder:
    """A model's code in parts, coarse first. Part i has the columns ``features[i]`` of ``model.latent_means``
    and ``kl[i]`` of the per-dimension KL (``evaluate(...)["kl_per_dim"]``); ``log_px(x, g)`` is the per-image
    log p(x | first g parts at their posterior means, the rest completed by the model). ``clusters`` says the
    model is a clustering model (``model.cluster(x)``, its first part): it is also scored by cluster accuracy.

    ``sample(x, g, image)`` decodes from a *sample*, by one rule for every model: the first g parts drawn from
    the posterior q(· | x) (each given the parts before it where the posterior is sequential), the rest drawn
    from the prior given the parts before them (the conditional prior; N(0, I) for independent units). It
    returns log p(x | that code) [B] and, with `image`, the decoded image [B, C, H, W] in [0, 1]: the
    decoder's mean, or one image drawn pixel by pixel where the decoder is autoregressive
    (``pixel_by_pixel``: H·W decoder passes, so costly). g = 0 decodes a sample of the model.
    ``code_sample(x)`` is one draw of the whole code from q(· | x) in the columns of ``model.latent_means``
    (a class as its one-hot vector)."""

    kind: str  # how the order is defined, in words
    labels: list[str]  # one per part
    features: list[list[int]]
    kl: list[list[int]]
    log_px: Callable[[torch.Tensor, int], torch.Tensor]
    clusters: bool = False
    sample: Callable[[torch.Tensor, int, bool], tuple[torch.Tensor, torch.Tensor | None]] | None = None
    pixel_by_pixel: bool = False
    code_sample: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.labels)


@runtime_checkable
class CoarseToFine(Protocol):
    """A model that orders its code from coarse to fine. `kl_per_dim` is the test KL of every column of
    ``elbo_terms(x).kl_dims``; a model without an order of its own orders its units by it
    (:func:`units_by_kl`)."""

    def code_order(self, kl_per_dim) -> CodeOrder: ...


def kl_parts(kl_per_dim) -> list[list[int]]:
    """Units ordered by KL (largest first), in parts of cumulative size 1, 2, 4, ... (the last part ends at D)."""
    order = torch.as_tensor(kl_per_dim).argsort(descending=True).tolist()
    parts, start, size = [], 0, 1
    while start < len(order):
        parts.append(order[start:size])
        start, size = size, 2 * size
    return parts


def units_by_kl(kl_per_dim, posterior_mean: Callable[[torch.Tensor], torch.Tensor],
                log_px_given: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                posterior_sample: Callable[[torch.Tensor], torch.Tensor] | None = None,
                decode_sample: Callable | None = None, pixel_by_pixel: bool = False) -> CodeOrder:
    """The order of a flat latent with no order of its own: its units by KL, largest first, in the parts of
    :func:`kl_parts`. A prefix is the posterior mean ``posterior_mean(x)`` [B, D] with every unit outside it at
    0, the prior mean of N(0, I); ``log_px_given(x, z)`` is log p(x | z). With ``posterior_sample(x)`` (a draw
    of q(z | x), [B, D]) and ``decode_sample(x, z, image)`` (log p(x | z) and, with `image`, the decoded
    image) the order also has :attr:`CodeOrder.sample`: the prefix's units drawn from q, the others from N(0, 1)."""
    parts = kl_parts(kl_per_dim)
    flat = [u for p in parts for u in p]
    sizes = [sum(len(p) for p in parts[:i + 1]) for i in range(len(parts))]

    def log_px(x, g):
        z_mean, keep = posterior_mean(x), flat[:sizes[g - 1]] if g else []
        z = torch.zeros_like(z_mean)
        z[:, keep] = z_mean[:, keep]
        return log_px_given(x, z)
    def sample(x, g, image=True):
        z, keep = posterior_sample(x), flat[:sizes[g - 1]] if g else []
        rest = [u for u in range(z.shape[-1]) if u not in set(keep)]
        z[:, rest] = torch.randn_like(z[:, rest])
        return decode_sample(x, z, image)
    labels = [f"the {n} unit{'s' if n > 1 else ''} of highest KL" for n in sizes]
    return CodeOrder("units by KL, largest first", labels, parts, parts, log_px,
                     sample=sample if posterior_sample is not None else None, pixel_by_pixel=pixel_by_pixel,
                     code_sample=posterior_sample)


@runtime_checkable
class MultiStep(Protocol):
    """A model optimised in ``steps_per_batch`` steps per minibatch; its loss takes ``part=0..n-1``."""

    steps_per_batch: int

    def loss(self, x: torch.Tensor, kl_weight: float = 1.0, free_bits: float = 0.0,
             part: int | None = None) -> tuple[torch.Tensor, Scalars]: ...


@runtime_checkable
class StageWise(Protocol):
    """A model trained stage by stage: ``set_stage(s)`` (s = 1..num_stages) selects what the loss trains
    and freezes what earlier stages trained."""

    num_stages: int

    def set_stage(self, stage: int) -> object: ...


@runtime_checkable
class Supervised(Protocol):
    """A model trained on labelled images: the loop passes the minibatch's labels as ``y``."""

    uses_labels: bool

    def loss(self, x: torch.Tensor, y: torch.Tensor, kl_weight: float = 1.0,
             free_bits: float = 0.0) -> tuple[torch.Tensor, Scalars]: ...


def kl_penalty(kl: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    """The KL term to minimise from per-example KLs of shape [B, J] (J latent dimensions or groups).

    With free bits λ > 0 (Kingma et al. 2016) each of the J terms is averaged over the batch and only the
    part above λ is penalised: Σ_j max(λ, E_batch KL_j). With λ = 0 this is the plain batch-mean KL.
    """
    per_unit = kl.mean(0)
    if free_bits > 0:
        per_unit = per_unit.clamp(min=free_bits)
    return per_unit.sum()


def negative_elbo(terms: ElboTerms, kl_weight: float = 1.0, free_bits: float = 0.0,
                  recon: torch.Tensor | None = None) -> tuple[torch.Tensor, Scalars]:
    """The loss every ELBO-trained model minimises: the reconstruction term `recon` (default the batch mean
    of −log p(x|z)) plus the weighted KL penalty (:func:`kl_penalty`), and the scalars the training loop
    logs: ``elbo``, ``recon`` (−log p(x|z)) and ``kl``, batch means."""
    recon_term = -terms.log_px.mean() if recon is None else recon
    loss = recon_term + kl_weight * kl_penalty(terms.kl_dims, free_bits)
    return loss, {"elbo": terms.elbo.mean(), "recon": -terms.log_px.mean(), "kl": terms.kl.mean()}


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up: 0 at step 0, 1 from `warmup_steps` on (always 1 without warm-up)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)
