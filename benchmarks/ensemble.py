"""Several seeds of one model trained at once: the members' parameters stacked, the loss vmapped over them.

On a GPU a small model leaves most of the device idle; ``n`` copies stacked along a new leading dimension
run as one set of (batched) kernels, so ``n`` seeds cost little more than one. Each member keeps its own
initial weights and its own optimizer state (Adam is elementwise, so one Adam over the stacked tensors is
``n`` independent Adams), and the summed loss gives every member exactly the gradient of its own loss::

    ens = Ensemble([VAE(cfg) for _ in seeds])      # after seeding each construction as usual
    loss, scalars = ens.loss(x)                    # x: [n, B, ...] (a batch per member) or [B, ...] (shared)
    models = ens.unstack()                         # ordinary modules again, for the evaluation code

Works for models whose ``loss`` has no data-dependent Python control flow and no batch norm in training mode
(``torch.func.vmap``'s limits): chapter 01's VAEs. Gradient clipping must be per member (it is not done here).

The book does not train this way; bench_vae.py measures what it would gain (its "x n at once" column).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn
from torch.distributions import Distribution
from torch.func import functional_call, stack_module_state, vmap


@contextmanager
def _vmappable_distributions():
    """torch.distributions under vmap: no argument checks (they branch on data) and Gaussian noise drawn out of
    place (``Normal.rsample`` fills an unbatched ``empty`` in place, which vmap cannot make differ between
    members; ``torch.randn`` it can)."""
    from torch.distributions import normal

    validate, draw = Distribution._validate_args, normal._standard_normal
    Distribution.set_default_validate_args(False)
    normal._standard_normal = lambda shape, dtype, device: torch.randn(shape, dtype=dtype, device=device)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(validate)
        normal._standard_normal = draw


class _Loss(nn.Module):
    """A module whose forward is the wrapped model's ``loss``, so that ``functional_call`` can call it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, kl_weight, free_bits):
        loss, scalars = self.model.loss(x, kl_weight=kl_weight, free_bits=free_bits)
        return loss, scalars


class Ensemble(nn.Module):
    """`models` (same architecture, different weights) as one module with stacked parameters.

    `randomness` is vmap's: ``"different"`` (each member draws its own noise, as separate seeds do) or
    ``"same"`` (one draw shared by all members, which makes each member's step identical to a separate run
    given the same random state: used by the tests)."""

    def __init__(self, models: list[nn.Module], randomness: str = "different"):
        super().__init__()
        if len(models) < 1:
            raise ValueError("an ensemble needs at least one model")
        if randomness not in ("different", "same"):
            raise ValueError(f"randomness must be 'different' or 'same', got {randomness!r}")
        params, buffers = stack_module_state([_Loss(m) for m in models])
        self.names = list(params)
        self.stacked = nn.ParameterList([nn.Parameter(params[k]) for k in self.names])
        self.buffer_names = list(buffers)
        for i, k in enumerate(self.buffer_names):
            self.register_buffer(f"buffer_{i}", buffers[k])
        # the architecture only, on the meta device and unregistered (not a parameter of the ensemble)
        object.__setattr__(self, "template", _Loss(copy.deepcopy(models[0])).to("meta"))
        self.size, self.randomness = len(models), randomness

    def _state(self) -> tuple[dict, dict]:
        return (dict(zip(self.names, self.stacked)),
                {k: getattr(self, f"buffer_{i}") for i, k in enumerate(self.buffer_names)})

    def member_losses(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """Each member's loss [n] and scalars ({name: [n]}); x is [n, B, ...] or [B, ...] (shared by all)."""
        params, buffers = self._state()
        shared = x.dim() == len(self.template.model.cfg.image_shape) + 1

        def one(p, b, xb):
            return functional_call(self.template, (p, b), (xb, kl_weight, free_bits))

        with _vmappable_distributions():
            return vmap(one, in_dims=(0, 0, None if shared else 0), randomness=self.randomness)(params, buffers, x)

    def loss(self, x, kl_weight: float = 1.0, free_bits: float = 0.0):
        """The sum of the members' losses (each member's gradient is that of its own loss) and the scalars
        averaged over members."""
        losses, scalars = self.member_losses(x, kl_weight, free_bits)
        return losses.sum(), {k: v.mean() for k, v in scalars.items()}

    def unstack(self) -> list[nn.Module]:
        """The members as ordinary modules (copies of the current weights), in eval mode."""
        params, buffers = self._state()
        members = []
        for i in range(self.size):
            m = _Loss(copy.deepcopy(self.template.model)).to_empty(device=self.stacked[0].device)
            m.load_state_dict({k: v[i].detach().clone() for k, v in {**params, **buffers}.items()})
            members.append(m.model.eval())
        return members
