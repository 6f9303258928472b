"""Gradient estimators for categorical latent variables, behind one interface, and the toy problem.

The goal is ∇_θ E_{z ~ Cat(softmax θ)}[f(z)] where f is a per-sample loss and θ are logits [B, K]. Every
estimator is an ``nn.Module`` called as

    est = estimator(logits, f, f_cv=None, context=None, group=None)

with ``f(z)`` mapping one-hot (or relaxed) codes of shape [..., B, K] to losses [..., B]. It returns an
:class:`Estimate` whose ``objective`` [B] has the value of the per-sample loss and whose gradient is the
estimator: a model minimises ``objective.mean()``. Gradients reach

* the logits (hence the encoder) through the estimator,
* whatever f depends on (a decoder) through f at the discrete sample (through f at all K codes for the exact
  estimator, at the relaxed sample for CONCRETE),
* the estimator's own parameters (NVIL's baseline, REBAR's temperature and scale, RELAX's surrogate network)
  through auxiliary terms whose value is zero, so the logged loss is unchanged.

``f_cv`` is f for the control-variate evaluations of REBAR and RELAX: a model passes a version of f whose
decoder parameters are detached, so that the control variate, whose expectation is zero, adds no variance
to the decoder's gradient. ``context`` [B, C] is the input of learned baselines (the image, flattened);
``group`` [B] selects an independent copy of the estimator parameters (used to run many seeds of the toy
problem at once; models leave it at None).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Categorical, OneHotCategorical, RelaxedOneHotCategorical
from torch.distributions.relaxed_categorical import ExpRelaxedCategorical

ESTIMATORS = ("exact", "reinforce", "nvil", "concrete", "rebar", "relax")
UNBIASED = ("exact", "reinforce", "nvil", "rebar", "relax")

Loss = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Estimate:
    """What an estimator returns for a batch of B samples.

    ``objective`` [B]: value = ``loss``, gradient = the estimator (plus zero-valued terms that train the
    estimator's parameters). ``loss`` [B]: the per-sample loss, detached (f at the sample; the exact
    expectation for ``exact``; f at the relaxed sample for CONCRETE without straight-through). ``z`` [B, K]:
    the code that was used. ``stats``: scalars worth logging (temperatures, baseline error, ...).
    """

    objective: torch.Tensor
    loss: torch.Tensor
    z: torch.Tensor
    stats: dict[str, torch.Tensor] = field(default_factory=dict)


def _per_sample(value: torch.Tensor, batch: int, what: str) -> torch.Tensor:
    """Insist on shape [B]: a [B, 1] tensor against a [B] one would silently broadcast to [B, B]."""
    if value.shape != (batch,):
        raise ValueError(f"{what} must have shape [{batch}] (one value per sample), got {tuple(value.shape)}; "
                         f"a [B, 1] tensor combined with a [B] one would broadcast to [B, B]")
    return value


def _zero_valued(term: torch.Tensor) -> torch.Tensor:
    """`term` - sg(term): contributes the gradient of `term` and nothing to the value."""
    return term - term.detach()


def gumbel(shape, like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise -log(-log u), u ~ U(0, 1), clamped away from 0 and 1."""
    u = torch.rand(shape, device=like.device, dtype=like.dtype).clamp(1e-10, 1 - 1e-7)
    return -torch.log(-torch.log(u))


def conditional_gumbel(log_p: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Perturbed logits ã ~ p(a | argmax a = b) for a = log p + Gumbel (Tucker et al. 2017, appendix).

    With v ~ U(0, 1): ã_b = -log(-log v_b) and ã_i = -log(-log v_i / p_i - log v_b) for i ≠ b. Differentiable
    in log p (a reparameterisation of the conditional distribution)."""
    v = torch.rand_like(log_p).clamp(1e-10, 1 - 1e-7)
    log_v = torch.log(v)
    log_vb = log_v.gather(-1, b.unsqueeze(-1))
    others = -torch.log(torch.exp(torch.log(-log_v) - log_p) - log_vb)
    top = -torch.log(-log_vb)
    return torch.where(F.one_hot(b, log_p.shape[-1]).bool(), top, others)


class GroupedScalar(nn.Module):
    """One scalar parameter per group (`groups` independent copies), read with a group index [B]."""

    def __init__(self, init: float, groups: int = 1):
        super().__init__()
        self.value = nn.Parameter(torch.full((groups,), float(init)))

    def forward(self, group: torch.Tensor | None, batch: int) -> torch.Tensor:
        return self.value.expand(batch) if group is None else self.value[group]


class GroupedLinear(nn.Module):
    """A linear layer with `groups` independent weight sets, chosen per row by a group index."""

    def __init__(self, n_in: int, n_out: int, groups: int = 1, zero: bool = False):
        super().__init__()
        layer = nn.Linear(n_in, n_out)
        self.weight = nn.Parameter(layer.weight.detach().expand(groups, -1, -1).clone())
        self.bias = nn.Parameter(layer.bias.detach().expand(groups, -1).clone())
        if zero:
            nn.init.zeros_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor, group: torch.Tensor | None) -> torch.Tensor:
        if group is None:
            return F.linear(x, self.weight[0], self.bias[0])
        return torch.einsum("bi,boi->bo", x, self.weight[group]) + self.bias[group]


class Estimator(nn.Module):
    """Base class: subclasses implement :meth:`estimate`; :meth:`forward` checks shapes."""

    name = "estimator"
    unbiased = True

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, f: Loss, f_cv: Loss | None = None, context: torch.Tensor | None = None,
                group: torch.Tensor | None = None) -> Estimate:
        if logits.dim() != 2 or logits.shape[-1] != self.num_classes:
            raise ValueError(f"logits must have shape [B, {self.num_classes}], got {tuple(logits.shape)}")
        batch = logits.shape[0]

        def checked(fn: Loss) -> Loss:
            def g(z):
                out = fn(z)
                if out.shape != z.shape[:-1]:
                    raise ValueError(f"f must map codes {tuple(z.shape)} to per-sample losses "
                                     f"{tuple(z.shape[:-1])}, got {tuple(out.shape)}")
                return out
            return g

        est = self.estimate(logits, checked(f), checked(f_cv or f), context, group)
        _per_sample(est.objective, batch, f"{self.name} objective")
        _per_sample(est.loss, batch, f"{self.name} loss")
        return est

    def estimate(self, logits, f, f_cv, context, group) -> Estimate:  # pragma: no cover - abstract
        raise NotImplementedError


class Exact(Estimator):
    """Enumerate the K codes: E_q[f] = Σ_k p_k f(e_k), differentiated exactly (K evaluations of f)."""

    name = "exact"

    def estimate(self, logits, f, f_cv, context, group):
        probs = logits.softmax(-1)
        k = self.num_classes
        codes = torch.eye(k, device=logits.device, dtype=logits.dtype)[:, None, :].expand(k, *logits.shape)
        losses = f(codes)  # [K, B]
        expected = (probs.T * losses).sum(0)
        z = F.one_hot(probs.argmax(-1), k).to(logits.dtype)
        return Estimate(expected, expected.detach(), z)


class Reinforce(Estimator):
    """The score-function estimator f(z) ∇ log p(z) (Williams 1992), without a baseline."""

    name = "reinforce"

    def estimate(self, logits, f, f_cv, context, group):
        q = OneHotCategorical(logits=logits)
        z = q.sample()
        loss = f(z)
        surrogate = loss.detach() * q.log_prob(z)
        return Estimate(loss + _zero_valued(surrogate), loss.detach(), z)


class NVIL(Estimator):
    """REINFORCE with a learned input-dependent baseline c_ψ(x) and variance normalisation (Mnih & Gregor 2014).

    The learning signal f(z) − m − c_ψ(x) is centred by a running mean m (the input-independent baseline)
    and, while training, divided by max(1, running std), both from the batches before this one (then updated
    with it): an adaptive step size that keeps the estimator's
    direction. c_ψ is trained by regression onto f(z) − m through a zero-valued term. In eval mode the
    normalisation is off, so measured gradients are those of the unbiased estimator. With
    ``standardised_baseline`` the network predicts f(z) − m in units of the running std (c_ψ = std · net),
    so that it learns at the model's learning rate even when the loss varies by hundreds of nats from one
    input to the next (AIR's scenes); the estimator stays unbiased, since the std comes from earlier batches.
    """

    name = "nvil"

    def __init__(self, num_classes: int, context_dim: int = 0, hidden: tuple[int, ...] = (100,), groups: int = 1,
                 momentum: float = 0.9, normalise: bool = True, standardised_baseline: bool = False):
        super().__init__(num_classes)
        self.standardised_baseline = standardised_baseline
        self.bias = GroupedScalar(0.0, groups)
        self.net = None
        if context_dim > 0:
            from c2f.nn import mlp

            self.net = mlp([context_dim, *hidden, 1])
            nn.init.zeros_(self.net[-1].weight)
            nn.init.zeros_(self.net[-1].bias)
        self.momentum, self.normalise = momentum, normalise
        self.register_buffer("running_mean", torch.zeros(groups))
        self.register_buffer("running_var", torch.ones(groups))
        self.register_buffer("initialised", torch.zeros(groups, dtype=torch.bool))

    def baseline(self, context, group, batch):
        """c_ψ(x) of shape [B] (the network's [B, 1] output is squeezed, never broadcast)."""
        c = self.bias(group, batch)
        if self.net is not None:
            c = c + self.net(context.reshape(batch, -1)).squeeze(-1)
        return _per_sample(c, batch, "NVIL baseline")

    def estimate(self, logits, f, f_cv, context, group):
        batch = logits.shape[0]
        q = OneHotCategorical(logits=logits)
        z = q.sample()
        loss = f(z)
        idx = torch.zeros(batch, dtype=torch.long, device=logits.device) if group is None else group
        # centre and scale with the statistics of earlier batches only: a baseline that includes the sample
        # itself is correlated with it, which shrinks (and biases) the gradient
        centred = loss.detach() - self.running_mean[idx]
        scale = self.running_var[idx].sqrt().clamp(min=1.0)
        unit = scale if self.standardised_baseline else torch.ones_like(scale)
        c = unit * self.baseline(context, group, batch)
        signal = centred - c.detach()
        if self.training and self.normalise:
            signal = signal / scale
        if self.training and torch.is_grad_enabled():
            self._update_statistics(loss.detach(), idx)
        baseline_loss = ((centred - c) / unit) ** 2
        objective = loss + _zero_valued(signal * q.log_prob(z)) + _zero_valued(baseline_loss)
        return Estimate(objective, loss.detach(), z, {"baseline_mse": baseline_loss.detach().mean()})

    @torch.no_grad()
    def _update_statistics(self, loss, idx):
        groups = self.running_mean.shape[0]
        count = torch.zeros(groups, device=loss.device).index_add_(0, idx, torch.ones_like(loss))
        mean = torch.zeros(groups, device=loss.device).index_add_(0, idx, loss) / count.clamp(min=1)
        var = torch.zeros(groups, device=loss.device).index_add_(0, idx, (loss - mean[idx]) ** 2) / count.clamp(min=1)
        seen = count > 0
        first = seen & ~self.initialised
        m = self.momentum
        self.running_mean.copy_(torch.where(first, mean, torch.where(seen, m * self.running_mean + (1 - m) * mean,
                                                                      self.running_mean)))
        resid = var + (mean - self.running_mean) ** 2
        self.running_var.copy_(torch.where(first, var.clamp(min=1e-8), torch.where(
            seen, m * self.running_var + (1 - m) * resid, self.running_var)))
        self.initialised |= seen


class Concrete(Estimator):
    """The CONCRETE / Gumbel-softmax relaxation (Maddison et al. 2017; Jang et al. 2017): f is evaluated at
    z̃ = softmax((log p + g)/τ) and differentiated along the path. Biased: it follows the gradient of the
    relaxed objective E[f(z̃)], not of E[f(z)]. With ``straight_through`` the forward value is the one-hot
    argmax and the backward pass uses the relaxed sample's gradient (also biased).

    ``temperature`` (λ₁) is that of the posterior; ``prior_temperature`` (λ₂) is that of the relaxed uniform
    prior used by :meth:`relaxed_kl`; they are separate settings.
    """

    name = "concrete"
    unbiased = False

    def __init__(self, num_classes: int, temperature: float = 2 / 3, prior_temperature: float = 1.0,
                 straight_through: bool = False):
        super().__init__(num_classes)
        self.temperature, self.prior_temperature = float(temperature), float(prior_temperature)
        self.straight_through = straight_through

    def estimate(self, logits, f, f_cv, context, group):
        t = torch.tensor(self.temperature, device=logits.device, dtype=logits.dtype)
        soft = RelaxedOneHotCategorical(t, logits=logits).rsample()
        if self.straight_through:
            hard = F.one_hot(soft.argmax(-1), self.num_classes).to(soft.dtype)
            z = hard + _zero_valued(soft)
        else:
            z = soft
        loss = f(z)
        return Estimate(loss, loss.detach(), z.detach())

    def posterior(self, logits) -> ExpRelaxedCategorical:
        """The relaxed posterior (in log space, for stable densities) at temperature λ₁."""
        return ExpRelaxedCategorical(torch.tensor(self.temperature, device=logits.device), logits=logits)

    def prior(self, batch: int, device=None) -> ExpRelaxedCategorical:
        """The relaxed uniform prior at temperature λ₂ (``prior_temperature``, not λ₁)."""
        probs = torch.full((batch, self.num_classes), 1.0 / self.num_classes, device=device)
        return ExpRelaxedCategorical(torch.tensor(self.prior_temperature, device=device), probs=probs)

    def relaxed_kl(self, logits) -> torch.Tensor:
        """Single-sample estimate of KL(q_λ₁(z̃|x) ‖ p_λ₂(z̃)) = log q(y) − log p(y), y ~ q, per sample [B]
        (computed for the log-space variables y = log z̃; the Jacobians of z̃ = exp y cancel)."""
        q = self.posterior(logits)
        y = q.rsample()
        return q.log_prob(y) - self.prior(logits.shape[0], logits.device).log_prob(y)


class Relax(Estimator):
    """REBAR (Tucker et al. 2017) and RELAX (Grathwohl et al. 2018): REINFORCE with a control variate c
    evaluated at Gumbel-perturbed logits, corrected by its reparameterised gradient so that the estimator
    stays unbiased:

        ĝ = [f(b) − c(ã)] ∇ log p(b) + ∇ c(a) − ∇ c(ã),    a = log p + g,  b = argmax a,  ã ~ p(a | b).

    REBAR: c(a) = η f(softmax(a/τ)) with a learned temperature τ and scale η. RELAX adds a learned network,
    c(a) = η f(softmax(a/τ)) + r_ρ(softmax(a/τ), x). The parameters of c are trained by minimising the
    single-sample variance Σ_k ĝ_k² (ĝ is unbiased for every c, so this is the variance plus a constant),
    through a zero-valued term of the objective: one optimiser step serves model and estimator.
    """

    name = "relax"

    def __init__(self, num_classes: int, context_dim: int = 0, hidden: tuple[int, ...] = (100,),
                 temperature: float = 0.5, eta: float = 1.0, surrogate_net: bool = True, groups: int = 1):
        super().__init__(num_classes)
        self.log_temperature = GroupedScalar(math.log(temperature), groups)
        self.eta = GroupedScalar(eta, groups)
        self.net = None
        if surrogate_net:
            sizes = [num_classes + context_dim, *hidden, 1]
            self.net = nn.ModuleList(GroupedLinear(a, b, groups, zero=(i == len(sizes) - 2))
                                     for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))
        else:
            self.name = "rebar"

    def control_variate(self, a, f_cv, context, group, batch):
        """c(a) [B] for perturbed logits a [B, K]."""
        tau = self.log_temperature(group, batch).exp().unsqueeze(-1)
        soft = (a / tau).softmax(-1)
        c = self.eta(group, batch) * f_cv(soft)
        if self.net is not None:
            h = soft if context is None or context.shape[-1] == 0 else torch.cat([soft, context.reshape(batch, -1)], -1)
            for i, layer in enumerate(self.net):
                h = layer(h, group)
                if i < len(self.net) - 1:
                    h = torch.relu(h)
            c = c + h.squeeze(-1)
        return c

    def estimate(self, logits, f, f_cv, context, group):
        batch, k = logits.shape
        with torch.no_grad():
            noise = gumbel(logits.shape, logits)
            b = (logits.log_softmax(-1) + noise).argmax(-1)
        z = F.one_hot(b, k).to(logits.dtype)
        loss = f(z)
        if not torch.is_grad_enabled():
            return Estimate(loss, loss, z)
        tune = self.training
        # ĝ is formed explicitly on a detached copy of the logits, differentiable in the parameters of c
        # (create_graph) but not in the encoder: the encoder receives ĝ through <sg(ĝ), θ>, and the variance
        # objective Σ_k ĝ_k² trains c only. The coefficient f(b) − c(ã) is not differentiated w.r.t. θ but
        # stays differentiable w.r.t. the parameters of c.
        leaf = logits.detach().requires_grad_(True)
        log_p = leaf.log_softmax(-1)
        c_a = self.control_variate(log_p + noise, f_cv, context, group, batch)
        c_tilde = self.control_variate(conditional_gumbel(log_p, b), f_cv, context, group, batch)
        (pathwise,) = torch.autograd.grad((c_a - c_tilde).sum(), leaf, create_graph=tune)
        score = z - log_p.detach().exp()  # ∇_θ log p(b) for softmax logits
        grad = (loss.detach() - c_tilde).unsqueeze(-1) * score + pathwise  # ĝ per sample, [B, K]
        objective = loss + _zero_valued((grad.detach() * logits).sum(-1))
        stats = {"temperature": self.log_temperature.value.exp().mean().detach(),
                 "eta": self.eta.value.mean().detach()}
        if tune:
            variance = grad.pow(2).sum(-1)
            objective = objective + _zero_valued(variance)
            stats["grad_square"] = variance.detach().mean()
        return Estimate(objective, loss.detach(), z, stats)


def make_estimator(name: str, num_classes: int, *, context_dim: int = 0, groups: int = 1, temperature: float = 0.5,
                   prior_temperature: float = 1.0, straight_through: bool = False,
                   hidden: tuple[int, ...] = (100,), normalise: bool = True,
                   standardised_baseline: bool = False) -> Estimator:
    """An estimator by name (one of :data:`ESTIMATORS`). `temperature` is CONCRETE's fixed temperature and
    the initial temperature of REBAR and RELAX; `context_dim` the size of the input of NVIL's baseline and of
    RELAX's surrogate network; `groups` the number of independent parameter copies; `normalise` and
    `standardised_baseline` NVIL's options of those names."""
    if name == "exact":
        return Exact(num_classes)
    if name == "reinforce":
        return Reinforce(num_classes)
    if name == "nvil":
        return NVIL(num_classes, context_dim, hidden, groups, normalise=normalise,
                    standardised_baseline=standardised_baseline)
    if name == "concrete":
        return Concrete(num_classes, temperature, prior_temperature, straight_through)
    if name == "rebar":
        return Relax(num_classes, 0, hidden, temperature, 1.0, surrogate_net=False, groups=groups)
    if name == "relax":
        return Relax(num_classes, context_dim, hidden, temperature, 1.0, surrogate_net=True, groups=groups)
    raise ValueError(f"unknown estimator {name!r}; choose one of {ESTIMATORS}")


def gradient_samples(estimator: Estimator, logits: torch.Tensor, f: Loss, n: int, context=None,
                     group: torch.Tensor | None = None) -> torch.Tensor:
    """n independent single-sample estimates of ∇_θ E[f] for each row of `logits` [B, K]: shape [n, B, K].

    Computed in one batch of n·B rows on a fresh leaf (no ``.grad`` field is touched), with the estimator in
    eval mode (no parameter tuning, no NVIL normalisation) and restored afterwards."""
    was_training = estimator.training
    estimator.eval()
    batch = logits.shape[0]
    leaf = logits.detach().repeat(n, 1).requires_grad_(True)
    ctx = None if context is None else context.repeat(n, *([1] * (context.dim() - 1)))
    grp = None if group is None else group.repeat(n)
    with torch.enable_grad():
        est = estimator(leaf, f, context=ctx, group=grp)
        (grad,) = torch.autograd.grad(est.objective.sum(), leaf)
    estimator.train(was_training)
    return grad.view(n, batch, -1)


def exact_gradient(logits: torch.Tensor, f: Loss) -> torch.Tensor:
    """∇_θ Σ_k p_k f(e_k) for each row of `logits` [B, K] (f must not depend on θ)."""
    return gradient_samples(Exact(logits.shape[-1]), logits, f, 1)[0]


# --- the toy problem ------------------------------------------------------------------------------------


def squared_distance(target: torch.Tensor) -> Loss:
    """f(z) = (1/K) Σ_k (z_k − t_k)², the toy loss, for codes [..., K]."""
    return lambda z: (z - target.to(z)).pow(2).mean(-1)


def toy_values(target) -> dict[str, float]:
    """The exact expected loss at the uniform policy and at the optimum (the best deterministic policy)."""
    target = torch.as_tensor(target, dtype=torch.float64)
    k = len(target)
    f_codes = squared_distance(target)(torch.eye(k, dtype=torch.float64))
    return {"uniform": f_codes.mean().item(), "optimum": f_codes.min().item()}


def run_toy(estimator: str, target, *, steps: int = 2000, seeds: int = 5, batch_size: int = 1, lr: float = 0.01,
            tune_lr: float = 0.01, temperature: float = 0.5, log_every: int = 20, variance_every: int = 100,
            variance_samples: int = 1000, seed: int = 0) -> dict:
    """Minimise E_{z ~ Cat(softmax θ)}[f(z)] over logits θ ∈ R^K (initialised at 0, i.e. uniform) with Adam.

    All `seeds` runs go at once: θ is [seeds, K], each step draws `batch_size` samples per run, and every
    learned estimator parameter has one independent copy per run (``groups``). Returns numpy arrays:
    ``steps`` and ``loss`` ([seeds, T], the exact expected loss Σ_k p_k f(e_k)), and ``var_steps`` and
    ``log_var`` ([seeds, V], the log of the gradient variance, summed over the K logits, measured from
    `variance_samples` single-sample estimates at the current θ; −inf for the exact estimator), and for REBAR
    and RELAX their learned ``temperature`` and ``eta`` ([seeds, T], at the logged steps).
    """
    torch.manual_seed(seed)
    target = torch.as_tensor(target, dtype=torch.float32)
    k = len(target)
    f = squared_distance(target)
    f_codes = f(torch.eye(k))
    theta = nn.Parameter(torch.zeros(seeds, k))
    est = make_estimator(estimator, k, groups=seeds, temperature=temperature, hidden=(16,))
    params = [{"params": [theta], "lr": lr}]
    if list(est.parameters()):
        params.append({"params": list(est.parameters()), "lr": tune_lr})
    opt = torch.optim.Adam(params)
    group = torch.arange(seeds).repeat(batch_size)
    tuned = isinstance(est, Relax)
    out = {"steps": [], "loss": [], "var_steps": [], "log_var": []} | ({"temperature": [], "eta": []} if tuned else {})
    for step in range(steps + 1):
        if step % log_every == 0:
            with torch.no_grad():
                out["steps"].append(step)
                out["loss"].append((theta.softmax(-1) * f_codes).sum(-1).clone())
                if tuned:
                    out["temperature"].append(est.log_temperature.value.exp().clone())
                    out["eta"].append(est.eta.value.clone())
        if step % variance_every == 0 or step == steps:
            grads = gradient_samples(est, theta, f, variance_samples, group=torch.arange(seeds))
            out["var_steps"].append(step)
            out["log_var"].append(grads.var(0).sum(-1).log())
        if step == steps:
            break
        logits = theta.repeat(batch_size, 1)
        objective = est(logits, f, group=group).objective
        opt.zero_grad(set_to_none=True)
        (objective.view(batch_size, seeds).mean(0).sum()).backward()
        opt.step()
    result = {"steps": torch.tensor(out["steps"]).numpy(), "loss": torch.stack(out["loss"], 1).numpy(),
              "var_steps": torch.tensor(out["var_steps"]).numpy(),
              "log_var": torch.stack(out["log_var"], 1).detach().numpy()}
    if tuned:
        result |= {k: torch.stack(out[k], 1).detach().numpy() for k in ("temperature", "eta")}
    return result


def concrete_bias(target, logits, temperature: float, samples: int = 20000, seed: int = 0) -> dict[str, float]:
    """CONCRETE's bias on the toy problem at fixed logits [K]: the mean of `samples` single-sample CONCRETE
    gradients against the exact gradient of E[f(z)]. Returns the relative bias ‖E ĝ − ∇‖ / ‖∇‖, its standard
    error, the cosine between E ĝ and ∇, and the relaxed and the exact expected loss at these logits."""
    torch.manual_seed(seed)
    f = squared_distance(torch.as_tensor(target, dtype=torch.float32))
    theta = torch.as_tensor(logits, dtype=torch.float32).view(1, -1)
    k = theta.shape[-1]
    exact = exact_gradient(theta, f)[0]
    grads = gradient_samples(Concrete(k, temperature), theta, f, samples)[:, 0]
    mean = grads.mean(0)
    with torch.no_grad():
        relaxed = f(RelaxedOneHotCategorical(torch.tensor(float(temperature)), logits=theta.expand(samples, k))
                    .sample()).mean()
    return {"relative_bias": ((mean - exact).norm() / exact.norm()).item(),
            "relative_bias_se": (grads.std(0).norm() / samples ** 0.5 / exact.norm()).item(),
            "cosine": F.cosine_similarity(mean, exact, dim=0).item(),
            "relaxed_loss": relaxed.item(), "exact_loss": (theta.softmax(-1)[0] * f(torch.eye(k))).sum().item()}


def rebar_variance(target, logits, temperatures, etas, samples: int = 2000, seed: int = 0) -> torch.Tensor:
    """log of REBAR's single-sample gradient variance (summed over the logits) on the toy problem at fixed
    logits [K], for every fixed temperature τ and scale η of its control variate: [len(temperatures),
    len(etas)]. η = 0 is REINFORCE, so the grid shows how much any REBAR control variate can remove."""
    f = squared_distance(torch.as_tensor(target, dtype=torch.float32))
    theta = torch.as_tensor(logits, dtype=torch.float32).view(1, -1)
    est = make_estimator("rebar", theta.shape[-1])
    out = torch.empty(len(temperatures), len(etas))
    for i, tau in enumerate(temperatures):
        for j, eta in enumerate(etas):
            with torch.no_grad():
                est.log_temperature.value.fill_(math.log(tau))
                est.eta.value.fill_(eta)
            torch.manual_seed(seed)
            out[i, j] = gradient_samples(est, theta, f, samples)[:, 0].var(0).sum().log()
    return out
