"""What a model must provide to be trained and evaluated, and the objective helpers the models share.

Every model follows :class:`Trainable` (the training loop, :func:`c2f.train.fit`, needs only its ``loss``);
every latent-variable model also follows :class:`LatentVariableModel` (what :mod:`c2f.evaluate` needs),
returning its ELBO terms as one :class:`ElboTerms`. Four optional parts, written as protocols of their own:

* :class:`Progressive` ``num_groups`` ordered latent groups, any prefix of which can be decoded
  (``groups=g``): the progressive VAEs' groups, Conv-DRAW's iterations;
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
from typing import Protocol, runtime_checkable

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
    ``kl_groups(kl_dims)`` sums the KL columns of each group: [..., G]."""

    num_groups: int
    default_groups: int

    def kl_groups(self, kl_dims: torch.Tensor) -> torch.Tensor: ...

    def elbo_terms(self, x: torch.Tensor, groups: int | None = None) -> ElboTerms: ...

    def log_importance_weights(self, x: torch.Tensor, k: int, groups: int | None = None) -> torch.Tensor: ...


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
