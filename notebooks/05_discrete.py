# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Discrete latents: gradient estimators, D-VAE and D-VAE-ST
#
# A handwritten digit belongs to one of ten classes before it has a slant, a thickness or a position. A
# *categorical* latent variable can express this directly: with $z \in \{1, \dots, K\}$ and a decoder that
# maps each value to an image, the model must explain every image with one of $K$ **prototypes**. This is
# the coarsest description an image can have, and the clusters it induces can be compared with the labels.
#
# The price is that the reparameterisation trick of the VAE {cite}`kingma2014vae` does not apply: a sample
# of a categorical distribution is not a differentiable function of its parameters. This chapter therefore
# first compares the estimators of
#
# $$
# \nabla_\theta\, \mathbb E_{z \sim \mathrm{Cat}(\mathrm{softmax}\,\theta)}\big[f(z)\big]
# $$
#
# on a toy problem where everything is known, and then uses them to train two models: the **D-VAE**, whose
# decoder is a set of prototypes, and the **D-VAE-ST**, which also infers a continuous affine transformation
# that a spatial transformer {cite}`jaderberg2015stn` applies to the prototype. The models and the estimator
# design follow a public thesis on structured image decompositions; all numbers here are our own.

# %% tags=["parameters"]
profile = "default"  # the parameter profile this run was executed with
seed = 0  # base seed: run i of n_seeds uses seed + i
n_seeds = 3  # independent training runs per setting (mean ± std and the worst run are reported)
toy_steps = 2000  # Adam steps on the toy problem
toy_seeds = 10  # independent toy runs per estimator (vectorised)
toy_batch_sizes = [1, 20]  # samples per step in the batch-size sweep
toy_temperatures = [0.2, 0.66, 2.0]  # CONCRETE temperatures in the temperature sweep
toy_variance_samples = 1000  # single-sample estimates per gradient-variance measurement
toy_variance_every = 100  # steps between variance measurements
estimators = ["exact", "reinforce", "nvil", "concrete", "rebar", "relax"]
compare_train_size = 5000  # training images for the estimator comparison on digits 2, 6, 9 (0 means all)
compare_epochs = 3
datasets = ["mnist"]  # the ten-class data sets (FashionMNIST too in the gpu and full profiles)
big_estimators = ["exact"]  # D-VAE-ST estimators on ten classes (all six in gpu and full; RELAX diverged here: see text)
ten_seeds = 3  # seeds per ten-class setting (every ranking of the page over at least three seeds)
train_size = 0  # training images of the ten-class data sets (0 means all 50000)
epochs = 2  # epochs on the ten-class data sets
ten_prototype_init = "random"  # where the ten-class runs start their prototypes: data (k-means++ seeding) | random
short_train_size = 5000  # the short ten-class budget (training length, marginal-KL sweep, overclustering): images
short_epochs = 3  # and epochs of the short budget
marginal_weights = [0.0, 3.0, 30.0, 100.0]  # marginal-KL weights of the sweep (D-VAE-ST, MNIST, short budget)
overcluster_extra = [2]  # extra clusters beyond the ten classes for the overclustering runs on MNIST
test_size = 2000  # first test images of the selected classes used by every evaluation (0 means all)
omniglot_alphabets = ["Greek"]  # Omniglot background alphabets clustered into their characters ([] to skip)
omniglot_epochs = 30
batch_size = 128
lr = 1e-3
arch = "mlp"  # encoder and localisation network: mlp | conv
transform_prior_std = 0.1  # σ₀ of the prior on each affine parameter
marginal_weight = 30.0  # weight of the batch-marginal KL, the anti-collapse term (0 gives the plain ELBO)
prototype_init = "data"  # data (k-means++ seeding) | random
ablation = True  # train D-VAE-ST on {2, 6, 9} without each of the two robustness measures
iw_samples = 10  # importance samples of t for the D-VAE-ST test NLL (z is summed out exactly)
retrain = False  # ignore cached checkpoints and train again

# %%
import numpy as np
import pandas as pd
import torch

import c2f
from c2f import data, plots
from c2f.estimators import concrete_bias, rebar_variance, run_toy, toy_values
from c2f.evaluate import cluster_accuracy, cluster_assignments, describe, evaluate, many_to_one_accuracy
from c2f.experiment import Trial, run_trials, seed_list
from c2f.findings import ch05
from c2f.findings.targets import target_verdict
from c2f.models.factory import dvae_model
from c2f.stats import ranking
from c2f.train import TrainConfig

run = c2f.Run.start("05_discrete", globals())
device = run.device
NAMES = {"exact": "Exact", "reinforce": "REINFORCE", "nvil": "NVIL", "concrete": "CONCRETE", "rebar": "REBAR",
         "relax": "RELAX"}

# %% [markdown]
# ## Six gradient estimators
#
# Write $p = \mathrm{softmax}(\theta)$ for the class probabilities that an encoder produces and $f(z)$ for
# a per-sample loss of the one-hot code $z$ (later: minus the log-likelihood of an image given its
# prototype). All six estimators live in `c2f.estimators` behind one interface: they take the logits and
# $f$, and return a per-sample *objective* whose value is the loss and whose gradient is the estimator.
#
# * **Exact**: enumerate, $\nabla_\theta \sum_k p_k f(e_k)$. Deterministic, $K$ evaluations of $f$.
# * **REINFORCE** {cite}`williams1992reinforce`: $f(z)\, \nabla_\theta \log p(z)$ with $z \sim
#   \mathrm{Cat}(p)$. Unbiased because $\mathbb E[\nabla \log p(z)] = 0$, but its variance grows with the
#   size of $f$, not with how much $f$ varies.
# * **NVIL** {cite}`mnih2014nvil`: REINFORCE with the learning signal centred by a running mean and a
#   learned, input-dependent baseline $c_\psi(x)$, $\big(f(z) - m - c_\psi(x)\big)\nabla\log p(z)$, and
#   divided by a running standard deviation. $c_\psi$ is trained by regression onto $f(z) - m$.
# * **CONCRETE / Gumbel-softmax** {cite}`maddison2017concrete,jang2017gumbel`: replace $z$ by the relaxed
#   sample $\tilde z = \mathrm{softmax}\big((\log p + g)/\tau\big)$, $g$ Gumbel noise, and differentiate
#   $f(\tilde z)$ along the path. Low variance, but **biased**: it is the gradient of $\mathbb E[f(\tilde
#   z)]$, a different objective (optionally *straight-through*: the forward pass uses the one-hot argmax).

# %% [markdown]
# * **REBAR** {cite}`tucker2017rebar` and **RELAX** {cite}`grathwohl2018relax`: REINFORCE with a
#   control variate $c$ evaluated at the Gumbel-perturbed logits $a = \log p + g$, corrected so that the
#   estimate stays unbiased,
#
# $$
# \hat g = \big[f(b) - c(\tilde a)\big]\nabla_\theta \log p(b) + \nabla_\theta c(a) - \nabla_\theta
# c(\tilde a), \qquad b = \arg\max_k a_k,\quad \tilde a \sim p(a \mid b).
# $$
#
#   REBAR uses $c(a) = \eta f(\mathrm{softmax}(a/\tau))$; RELAX adds a free network,
#   $c(a) = \eta f(\mathrm{softmax}(a/\tau)) + r_\rho(\mathrm{softmax}(a/\tau), x)$. Since $\hat g$ is
#   unbiased whatever $c$ is, the parameters $\tau, \eta, \rho$ are trained to minimise
#   $\sum_k \hat g_k^2$, i.e. the variance, through a term of the objective whose value is zero, so one
#   optimiser step serves the model and the estimator.
#
# Three pitfalls are guarded against and unit-tested: a baseline of shape $[B, 1]$ subtracted from a loss
# of shape $[B]$ silently broadcasts to $[B, B]$ (turning NVIL into a batch-constant baseline and
# inflating measured variances by $B^2$), so every per-sample quantity is checked to be $[B]$; the relaxed
# prior of CONCRETE's relaxed KL has its own temperature, not the posterior's; and the gradient variance is
# measured on a fresh leaf tensor with the estimator's tuning switched off, so that no stale `.grad` and no
# tuning term leaks into it.

# %% [markdown]
# ## A toy problem
#
# The classic test: learn the logits $\theta \in \mathbb R^3$ (initialised at 0, i.e. uniform) to minimise
# $\mathbb E_{z}[f(z)]$ with $f(z) = \tfrac13 \sum_k (z_k - t_k)^2$ and $t = (0.34, 0.33, 0.33)$. The best
# policy always picks class 0, with expected loss 0.217800; the uniform start has 0.222244. The gap is
# tiny, so the estimator's noise decides everything. Each estimator runs for `toy_steps` Adam steps
# (learning rate 0.01, one sample per step) in `toy_seeds` independent runs, vectorised over runs; every
# learned estimator parameter has one independent copy per run. Every `toy_variance_every` steps the
# variance of the single-sample gradient estimate, summed over the three logits, is measured from
# `toy_variance_samples` fresh estimates at the current logits.

# %%
target = [0.34, 0.33, 0.33]
reference = toy_values(target)
print(f"expected loss at the uniform start {reference['uniform']:.6f}, at the optimum {reference['optimum']:.6f}")
toy = {name: run_toy(name, target, steps=toy_steps, seeds=toy_seeds, variance_every=toy_variance_every,
                     variance_samples=toy_variance_samples, seed=seed) for name in estimators}


def toy_figure(results: dict, title: str):
    fig, axes = plots.plt.subplots(1, 2, figsize=(11, 3.6))
    for name, r in results.items():
        plots.mean_band(axes[0], r["steps"], r["loss"], label=name)
        plots.mean_band(axes[1], r["var_steps"], r["log_var"], label=name)
    axes[0].axhline(reference["optimum"], color="k", ls=":", lw=1, label="optimum")
    axes[0].set(xlabel="step", ylabel="exact expected loss", title=title)
    axes[1].set(xlabel="step", ylabel="log gradient variance", title="variance of the gradient estimate")
    axes[0].legend(fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


fig = toy_figure({NAMES[k]: v for k, v in toy.items()}, f"one sample per step, {toy_seeds} runs")
run.savefig(fig, "toy_estimators")

# %% [markdown]
# **Figure: the estimators on the toy problem.** Left: the exact expected loss $\sum_k p_k f(e_k)$ of the
# current logits (mean ± one standard deviation over runs; dotted: the optimum). Right: the natural log of
# the variance of the single-sample gradient estimate (the exact gradient has none and is not drawn). The
# table below summarises the last step.

# %%
rows = {}
for name, r in toy.items():
    final = r["loss"][:, -1]
    log_var = r["log_var"][:, -1]
    rows[NAMES[name]] = {"final expected loss": f"{final.mean():.5f} ± {final.std():.5f}",
                         "error ×1000 (mean over steps)": f"{1000 * (r['loss'] - reference['optimum']).mean():.2f}",
                         "final log-variance": "−∞ (exact)" if not np.isfinite(log_var).all() else
                         f"{log_var.mean():.2f} ± {log_var.std():.2f}"}
    run.log(f"toy/{name}", {"final_loss": float(final.mean()), "final_loss_std": float(final.std()),
                            "mean_abs_error_x1000": float(1000 * (r["loss"] - reference["optimum"]).mean())})
    if np.isfinite(log_var).all():
        run.log(f"toy/{name}", {"final_log_variance": float(log_var.mean())})
display(pd.DataFrame(rows).T.style.set_uuid("toy").set_caption(  # fixed id: the HTML repeats run to run
    f"toy problem after {toy_steps} steps, {toy_seeds} runs"))

# %%
gap = reference["uniform"] - reference["optimum"]


def gap_left(r) -> float:
    """The share of the gap between the uniform start and the optimum still open at the last step."""
    return float((r["loss"][:, -1].mean() - reference["optimum"]) / gap)


print(*ch05.toy_lines(toy, NAMES, reference["optimum"], reference["uniform"], toy_steps), sep="\n")
for name, r in toy.items():
    run.log(f"toy/{name}", {"gap_left": gap_left(r)})

# %% [markdown]
# The variance ranking is the point of the toy. REINFORCE's signal $f(z) \approx 0.22$ barely changes from
# sample to sample, so almost all of its variance comes from multiplying a large constant by the score;
# any baseline that learns that constant removes it. NVIL and RELAX can learn it (RELAX's network through
# the variance objective); the lines above compare each estimator's final log-variance with REINFORCE's,
# with a 95 % interval over the runs, and give how much of the gap to the optimum each one leaves. REBAR,
# which the literature ranks between REINFORCE and RELAX, has no constant term in its control variate; the
# next cell looks at what it can reach. CONCRETE runs here at τ = 0.5, also the initial temperature of REBAR
# and RELAX; the two sweeps after that look at its temperature and its bias.
#
# ### REBAR's control variate on this problem
#
# REBAR's control variate is $c(a) = \eta\, f(\mathrm{softmax}(a/\tau))$, $f$ at a relaxed sample. We
# record the $\tau$ and $\eta$ it learns during the toy runs, and measure its single-sample variance at the
# uniform start for a grid of *fixed* $(\tau, \eta)$; the column $\eta = 0$ is REINFORCE.

# %%
grid_taus, grid_etas = [0.03, 0.1, 0.3, 0.5, 1.0, 3.0], [0.0, 0.25, 0.5, 0.75, 1.0, 1.5]
grid = rebar_variance(target, [0.0, 0.0, 0.0], grid_taus, grid_etas, samples=toy_variance_samples, seed=seed)
fig, axes = plots.plt.subplots(1, 2, figsize=(11, 3.6))
if "rebar" in toy:
    for p_name in ("temperature", "eta"):
        plots.mean_band(axes[0], toy["rebar"]["steps"], toy["rebar"][p_name],
                        label={"temperature": "τ"}.get(p_name, "η"))
    axes[0].set(xlabel="step", ylabel="value", title="REBAR's learned τ and η")
    axes[0].legend()
im = axes[1].imshow(grid.numpy(), cmap="viridis", aspect="auto")
axes[1].set(xticks=range(len(grid_etas)), xticklabels=grid_etas, yticks=range(len(grid_taus)),
            yticklabels=grid_taus, xlabel="η (0: REINFORCE)", ylabel="τ", title="log gradient variance at the start")
fig.colorbar(im, ax=axes[1])
fig.tight_layout()
run.savefig(fig, "toy_rebar")

# %%
i, j = divmod(int(grid.argmin()), len(grid_etas))
reduction = 1 - float(torch.exp(grid.min() - grid[:, 0].mean()))
print(f"best fixed (τ, η) on the grid: ({grid_taus[i]}, {grid_etas[j]}), log-variance {grid.min():.2f} against "
      f"REINFORCE's {grid[:, 0].mean():.2f}: the variance falls by {100 * reduction:.0f} %; "
      + ("no fixed (τ, η) of the grid halves REINFORCE's variance" if reduction < 0.5 else
         "a fixed (τ, η) of the grid at least halves REINFORCE's variance"))
run.log("toy/rebar_grid", {"best_log_variance": float(grid.min()), "reinforce_log_variance": float(grid[:, 0].mean()),
                           "best_reduction": reduction})
if "rebar" in toy:
    tau_end, eta_end = toy["rebar"]["temperature"][:, -1], toy["rebar"]["eta"][:, -1]
    print(f"REBAR's learned values after {toy_steps} steps: τ = {tau_end.mean():.2f} ± {tau_end.std():.2f}, "
          f"η = {eta_end.mean():.2f} ± {eta_end.std():.2f} (start: τ = 0.5, η = 1)")
    run.log("toy/rebar", {"final_temperature": float(tau_end.mean()), "final_eta": float(eta_end.mean())})

# %% [markdown]
# **Figure: REBAR's control variate.** Left: the temperature and scale REBAR learns (mean ± std over runs).
# Right: the log-variance of its gradient at the uniform logits for fixed $(\tau, \eta)$ (from
# `toy_variance_samples` estimates each). The line above says whether any cell of the grid halves the variance
# of the $\eta = 0$ column, and the learned values can be compared with the best cell. Where none does, the
# reason is the shape of this $f$, not the tuning: REINFORCE's variance here is a *constant* ($f \approx 0.22$
# at every vertex) times the score, and REBAR's control variate has no constant term. At a low temperature the
# relaxed sample is nearly one-hot and $\eta f(\tilde z) \to \eta f(b)$ would cancel that constant, but the
# correction $\nabla c(a) - \nabla c(\tilde a)$ then has gradients of order $1/\tau$ near the decision
# boundaries and its variance grows (the top-right cells); at higher temperatures the relaxed samples sit near
# the almost uniform target, where $f \approx 0$, so $\eta f(\tilde z)$ is a poor copy of $f(b)$ and the best
# $\eta$ falls towards 0, which is REINFORCE. NVIL's running mean and RELAX's network supply exactly the
# constant REBAR lacks. The published gains of REBAR were measured on sigmoid belief networks, where $f$
# changes much more between codes than it does here; REBAR's line in the toy section says how it fares here.
#
# ### Batch size and temperature
#
# Averaging more samples per step divides the variance of every estimator by the batch size, so the
# update of every *unbiased* estimator follows the exact gradient more closely; how far each gets within
# `toy_steps` steps is printed below the figure. CONCRETE's mean gradient is instead the gradient of the
# relaxed objective $\mathbb E[f(\tilde z)]$, which for this $f$ is lower near the uniform policy, because
# soft samples near $(1/3, 1/3, 1/3)$ are close to the almost-uniform target. No number of samples removes
# a bias; the temperature sweep after the figure measures it.

# %%
sweep = {}
for b in toy_batch_sizes:
    for name in estimators:
        sweep[(b, name)] = toy[name] if b == 1 else run_toy(
            name, target, steps=toy_steps, seeds=toy_seeds, batch_size=b, variance_every=toy_variance_every,
            variance_samples=toy_variance_samples, seed=seed)
big = max(toy_batch_sizes)
fig = toy_figure({NAMES[n]: sweep[(big, n)] for n in estimators}, f"{big} samples per step")
run.savefig(fig, "toy_batch_size")
for name in estimators:
    run.log(f"toy/{name}/batch{big}", {"final_loss": float(sweep[(big, name)]["loss"][:, -1].mean()),
                                       "gap_left": gap_left(sweep[(big, name)])})
print(f"gap to the optimum left after {toy_steps} steps with {big} samples per step: " +
      ", ".join(f"{NAMES[n]} {100 * gap_left(sweep[(big, n)]):.1f} %" for n in estimators))

# %% [markdown]
# **Figure: the largest batch of the sweep.** The same panels as above with the gradient averaged over
# a batch of samples at every step (the variance panel still shows the single-sample variance, which
# does not depend on the batch). The line above gives the share of the gap to the optimum that each
# estimator leaves open at the last step (100 % is the uniform policy).

# %%
temps = {f"τ = {t}": run_toy("concrete", target, steps=toy_steps, seeds=toy_seeds, temperature=t,
                             variance_every=toy_variance_every, variance_samples=toy_variance_samples, seed=seed)
         for t in toy_temperatures}
temps["Exact"] = toy["exact"]
fig = toy_figure(temps, "CONCRETE at several temperatures")
run.savefig(fig, "toy_temperature")
for t, (label, r) in zip(toy_temperatures, temps.items()):
    run.log(f"toy/concrete_tau{t}", {"final_loss": float(r["loss"][:, -1].mean()),
                                     "final_log_variance": float(r["log_var"][:, -1].mean())})

# %% [markdown]
# **Figure: CONCRETE's temperature.** Left: the expected loss of the discrete policy; right: the
# variance, which falls as the temperature rises (final log-variances in the record). The final losses
# hardly differ between temperatures, so they cannot tell how large the bias is. We measure it directly
# at fixed logits $\theta = (a, 0, 0)$ that already favour the best class: the mean of
# `20 × toy_variance_samples` CONCRETE gradients against the exact gradient, as the relative error
# $\lVert \mathbb E\hat g - \nabla \rVert / \lVert \nabla \rVert$ and the cosine between the two.

# %%
bias_taus = sorted(set(toy_temperatures) | {0.1, 0.5, 1.0})
bias = {(a, t): concrete_bias(target, [a, 0.0, 0.0], t, samples=20 * toy_variance_samples, seed=seed)
        for a in (1.0, 2.0) for t in bias_taus}
fig, axes = plots.plt.subplots(1, 2, figsize=(11, 3.4))
for a in (1.0, 2.0):
    rel = np.array([bias[(a, t)]["relative_bias"] for t in bias_taus])
    se = np.array([bias[(a, t)]["relative_bias_se"] for t in bias_taus])
    axes[0].errorbar(bias_taus, rel, yerr=2 * se, marker="o", capsize=3, label=f"θ = ({a:g}, 0, 0)")
    axes[1].plot(bias_taus, [bias[(a, t)]["cosine"] for t in bias_taus], marker="o", label=f"θ = ({a:g}, 0, 0)")
axes[0].set(xscale="log", yscale="log", xlabel="temperature τ", ylabel="‖E ĝ − ∇‖ / ‖∇‖",
            title="relative bias")
axes[1].axhline(0, color="k", lw=0.8)
axes[1].set(xscale="log", xlabel="temperature τ", ylabel="cosine(E ĝ, ∇)", title="direction of the mean gradient")
for ax in axes:
    ax.legend()
fig.tight_layout()
run.savefig(fig, "toy_concrete_bias")

# %%
for a in (1.0, 2.0):
    against = sum(bias[(a, t)]["cosine"] < 0 for t in bias_taus)
    smallest = min(bias_taus, key=lambda t: bias[(a, t)]["relative_bias"])
    print(f"θ = ({a:g}, 0, 0): the mean CONCRETE gradient points against the exact one at {against} of "
          f"{len(bias_taus)} temperatures; relative bias " +
          ", ".join(f"τ = {t:g}: {bias[(a, t)]['relative_bias']:.2f}" for t in bias_taus) +
          f"; smallest at τ = {smallest:g}")
    for t in bias_taus:
        run.log(f"toy/concrete_bias/a{a:g}/tau{t:g}", {k: v for k, v in bias[(a, t)].items()})

# %% [markdown]
# **Figure: CONCRETE's bias against the temperature** (error bars: two standard errors of the Monte-Carlo
# mean). The bias is not a small correction that a lower temperature removes: at logits that favour the
# best class, the mean CONCRETE gradient points away from the optimum, back towards the uniform policy
# (negative cosines; the lines above count them), and the lowest temperature does not make it small (the
# relative biases are printed above). The bias is measured here at logits that favour the best class, not at
# the near-uniform logits where the CONCRETE runs of the sweep stay, so it is a likely reason, not a measured
# one, why no temperature of the sweep moves the discrete policy. The unit tests check the bias itself: with
# 40,000 samples the mean CONCRETE gradient is many standard errors away from the exact gradient, while
# the mean of every unbiased estimator agrees with it.

# %% [markdown]
# ## The D-VAE: a mixture of prototypes
#
# The generative model draws a class uniformly and then an image from its prototype,
#
# $$
# z \sim \mathrm{Cat}(1/K), \qquad x \mid z \sim \mathrm{Bernoulli}\big(\mu_z\big),
# $$
#
# where the $K$ prototypes $\mu_k \in [0,1]^{784}$ are the output of a small network applied to the one-hot
# code. The encoder gives $q_\phi(z \mid x) = \mathrm{Cat}(\mathrm{softmax}\,\theta_\phi(x))$, and the ELBO
#
# $$
# \mathcal L(x) = \mathbb E_{q_\phi(z\mid x)}\big[\log p(x \mid z)\big] - \big(\log K - H[q_\phi(z \mid x)]\big)
# $$
#
# has an exact KL; only the reconstruction term needs a gradient estimator, and any of the six can be
# plugged in. With $K$ terms, the ELBO, $\log p(x) = \log \frac1K \sum_k p(x \mid e_k)$ and the posterior
# can be computed exactly at evaluation time, so the test numbers below involve no sampling of $z$.

# %% [markdown]
# ## The D-VAE-ST: prototypes that move
#
# A digit "2" written smaller or slanted is still a "2", but the D-VAE has to spend a prototype on it. The
# D-VAE-ST adds a continuous latent affine transformation $t \in \mathbb R^6$ with the prior
# $\mathcal N(\mathrm{identity}, \sigma_0^2 I)$ and warps the prototype with a spatial transformer
# (`affine_grid` / `grid_sample`, bilinear, zero padding),
#
# $$
# x \mid z, t \sim \mathrm{Bernoulli}\big(\mathrm{ST}(\mu_z, t)\big), \qquad
# q(t \mid x) = \mathcal N\big(m_\psi(x), \mathrm{diag}\, s^2_\psi(x)\big),
# $$
#
# with $t$ reparameterised and the Gaussian KL in closed form. The localisation network starts at
# $q(t \mid x) = p(t)$. All $K$ prototypes are warped with the same $t$, so the decoded image is linear in the
# code, $\sum_k z_k\,\mathrm{ST}(\mu_k, t)$: one-hot, relaxed and enumerated codes go through the same
# function, and the control variates of REBAR and RELAX, which use the warped prototypes detached from the
# decoder, stay twice differentiable without differentiating through the grid sampler twice.

# %% [markdown]
# **Robust training.** A prototype model can fall into a degenerate local optimum in which a few
# prototypes explain all images and the rest are never used; the thesis reports runs in which all images
# went to one cluster, even with the exact gradient. Two measures are meant to prevent it; both are switched
# on here, and the ablation below measures what each one changes:
#
# 1. *Data seeding* (`prototype_init="data"`): before the first step the prototypes are set to $K$ images of
#    the first batch chosen by k-means++ seeding (distant images preferred), lightly blurred, instead of
#    $K$ nearly identical random blobs.
# 2. *A batch-marginal KL* (`marginal_weight`): the ELBO's KL is a per-image term,
#    $\log K - H[q(z\mid x)]$, which is the same whether all images go to one cluster or are spread over
#    all of them. We add $\lambda\, \mathrm{KL}\big(\bar q(z) \,\|\, \mathrm{Cat}(1/K)\big)$, where
#    $\bar q$ is the average of $q(z \mid x)$ over the batch, which is zero when the clusters are used
#    equally. This term is **not part of the ELBO**; the reported ELBOs and likelihoods do not include it.

# %% [markdown]
# Accuracy is measured on the **test** split: each test image (one fixed binarization) goes to
# $\arg\max_z q(z \mid x)$, and clusters are matched one-to-one to classes by the Hungarian method
# {cite}`kuhn1955hungarian` (`scipy.optimize.linear_sum_assignment`). With more clusters than classes we
# also report the lenient **many-to-one** accuracy (each cluster labelled with its majority class), which
# can only grow with $K$. Every setting is trained with `n_seeds` seeds and reported as mean ± standard
# deviation together with the **worst** run.

# %%
DATA = {"mnist269": ("mnist", [2, 6, 9]), "mnist": ("mnist", None), "fashion_mnist": ("fashion_mnist", None)}
LABELS = {"mnist269": "MNIST {2, 6, 9}", "mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def load(key: str):
    """Training and test split of a data set, dynamically binarized (FashionMNIST included)."""
    name, classes = DATA[key]
    train = data.load(name, "train", device=device, binarize="dynamic", classes=classes)
    test = data.load(name, "test", device=device, binarize="dynamic", classes=classes).subset(test_size, seed=None)
    return train, test


# %%
def cluster_score(test, k: int, iw: int, fit_set=None):
    """The score of a clustering model on one fixed binarization of `test`: accuracy of its clusters matched
    one-to-one to the classes (on `fit_set`'s images when given), ELBO, NLL (`iw` importance samples), KL and
    clusters used; many-to-one accuracy too when there are more clusters than classes."""
    n_classes = len(test.y.unique())

    def score(model, s):
        clusters, labels = cluster_assignments(model, test)
        fit = cluster_assignments(model, fit_set) if fit_set is not None else None
        metrics = evaluate(model, test, seed=seed, iw_samples=iw)
        result = {"test_accuracy": cluster_accuracy(clusters, labels, k, matched_on=fit),
                  "test_elbo_nats": metrics["elbo_nats"], "test_nll_nats": metrics["nll_nats"],
                  "test_kl_nats": metrics["kl_nats"], "clusters_used": float(len(clusters.unique()))}
        if fit is not None:
            result["train_accuracy"] = cluster_accuracy(*fit, k)
        if k > n_classes:
            result["test_many_to_one_accuracy"] = many_to_one_accuracy(clusters, labels, k)
        return result
    return score


# %%
def train_and_score(key: str, train, test, *, estimators_: list[str], transform: bool, k: int, n_train: int,
                    n_epochs: int, tag: str, seeds: int = n_seeds, match_on_train: bool = False,
                    **overrides) -> dict:
    """Train `seeds` models per estimator of one setting (or load them from the cache) with
    :func:`c2f.experiment.run_trials` and score each with :func:`cluster_score`; return the outcomes by
    estimator (``.summary``: mean, and with several seeds ``_std`` and ``_worst``; ``.runs`` and ``.models``
    per seed). With `match_on_train` the clusters are matched to classes on the training images and that map
    is scored on the test images."""
    fit_set = train.subset(n_train, seed=None)
    kind = "dvae_st" if transform else "dvae"
    score = cluster_score(test, k, iw_samples if transform else 1, fit_set if match_on_train else None)
    trials = [Trial(f"{tag}-{key}-{e}",
                    lambda e=e: dvae_model(kind, run.params, num_classes=k, estimator=e, **overrides).to(device),
                    TrainConfig(epochs=n_epochs, batch_size=batch_size, lr=lr)) for e in estimators_]
    outcomes = run_trials(trials, fit_set, seeds=seed_list(seed, seeds), score=score, key="05",
                          retrain=retrain)
    for e, trial in zip(estimators_, trials):
        run.log(f"{tag}/{key}/{e}", outcomes[trial.name].summary)
    return {e: outcomes[t.name] for e, t in zip(estimators_, trials)}


# %%
def ranked(outcome) -> list:
    """(test accuracy, model) of every seed, worst first (the accuracies of the table, not a re-evaluation)."""
    return sorted(zip((r["test_accuracy"] for r in outcome.runs), outcome.models), key=lambda am: am[0])


def accuracy_text(summary: dict) -> str:
    return (f"test accuracy {describe(summary, 'test_accuracy', 1, 100, ' %')}, "
            f"NLL {describe(summary, 'test_nll_nats', 1)} nats")


# %% [markdown]
# ### Every estimator on digits {2, 6, 9}
#
# The small three-class problem (`compare_train_size` training images, `compare_epochs` epochs, $K = 3$)
# trains a D-VAE and a D-VAE-ST with each estimator. For the D-VAE, the test NLL is exact; for the
# D-VAE-ST, $z$ is summed out exactly and $t$ is importance-sampled with `iw_samples` samples from $q(t \mid
# x)$.

# %%
train269, test269 = load("mnist269")
print(f"MNIST {{2, 6, 9}}: {len(train269)} training images (using {compare_train_size or len(train269)}), "
      f"{len(test269)} test images")
compare_out = {}
for model_name, transform in (("dvae", False), ("dvae_st", True)):
    outcomes = train_and_score("mnist269", train269, test269, estimators_=estimators, transform=transform, k=3,
                               n_train=compare_train_size, n_epochs=compare_epochs, tag=model_name)
    for estimator, outcome in outcomes.items():
        compare_out[(model_name, estimator)] = outcome
        print(f"{model_name:8s} {NAMES[estimator]:10s} {accuracy_text(outcome.summary)}")
compare = {k: o.summary for k, o in compare_out.items()}

# %% [markdown]
# The table gives, for each estimator, the test accuracy and the test NLL of both models as mean ± std
# over seeds with the worst seed in brackets. Every model is scored on the same fixed binarization of the
# test images, and the figures below quote these same accuracies.

# %%
table = pd.DataFrame({
    NAMES[e]: {f"{m} accuracy (%)": describe(compare[(m, e)], "test_accuracy", 1, 100) for m in ("dvae", "dvae_st")}
    | {f"{m} NLL (nats)": describe(compare[(m, e)], "test_nll_nats", 1) for m in ("dvae", "dvae_st")}
    for e in estimators}).T
display(table.style.set_uuid("estimators").set_caption(f"MNIST {{2, 6, 9}}, test split ({len(test269)} images), K = 3, "
                                f"{n_seeds} seeds, {compare_epochs} epochs on {compare_train_size or len(train269)} "
                                f"images; {run.profile} profile"))

# %% [markdown]
# ### Prototypes and reconstructions
#
# The prototypes of the worst and the best seed of the D-VAE and the D-VAE-ST (exact estimator), and
# reconstructions of test images by the best D-VAE-ST: the image, its inferred prototype and the prototype
# warped by the posterior mean of $t$. Seeds are ranked, and titled, by the test accuracies of the table.

# %%
reference_estimator = "exact" if "exact" in estimators else estimators[0]
fig, axes = plots.plt.subplots(2, 2, figsize=(7, 2.6))
for row, model_name in enumerate(("dvae", "dvae_st")):
    seeds_ranked = ranked(compare_out[(model_name, reference_estimator)])
    for col, (acc, model) in enumerate((seeds_ranked[0], seeds_ranked[-1])):
        plots.image_grid(model.prototypes(), nrow=3, ax=axes[row, col],
                         title=f"{model_name}, {'worst' if col == 0 else 'best'} seed: {100 * acc:.1f} %")
fig.tight_layout()
run.savefig(fig, "prototypes_269")

x = test269.fixed_binarization(seed).x[:12]
best_st = ranked(compare_out[("dvae_st", reference_estimator)])[-1][1]
protos = best_st.prototypes()[best_st.cluster(x)]
fig, axes = plots.plt.subplots(3, 1, figsize=(8, 2.6))
for ax, images, title in zip(axes, (x, protos, best_st.reconstruct(x)),
                             ("test images", "inferred prototype", "prototype warped by E[t | x]")):
    plots.image_grid(images, nrow=12, ax=ax, title=title)
fig.tight_layout()
run.savefig(fig, "reconstructions_269")

# %% [markdown]
# ### Traversals of the transformation
#
# Each row starts from a prototype at the identity transformation and moves one of the six affine
# parameters $t = (t_{11}, t_{12}, t_{13}, t_{21}, t_{22}, t_{23})$ from −3σ₀ to +3σ₀ of its prior: the
# diagonal entries scale, the off-diagonal ones shear (together, rotate), the last column translates.

# %%
values = torch.linspace(-3 * transform_prior_std, 3 * transform_prior_std, 9)
identity = torch.tensor([[1.0, 0, 0, 0, 1, 0]], device=device)
for k in range(min(2, best_st.cfg.num_classes)):
    proto = best_st.prototypes()[k:k + 1]
    fig = plots.traversal(lambda delta, p=proto: best_st.warp(p, identity + delta).squeeze(1),
                          torch.zeros(1, 6, device=device), list(range(6)), values,
                          title=f"prototype {k}: one affine parameter at a time")
    run.savefig(fig, f"transform_traversal_{k}")

# %% [markdown]
# ### What makes training robust: an ablation
#
# The D-VAE-ST with the exact gradient on {2, 6, 9}, trained as above but without the batch-marginal KL,
# without data seeding, and without both (the plain ELBO from random prototypes, as in the thesis).

# %%
if ablation:
    variants = {"both measures": {}, "no marginal KL": {"marginal_weight": 0.0},
                "random prototypes": {"prototype_init": "random"},
                "neither (plain ELBO)": {"marginal_weight": 0.0, "prototype_init": "random"}}
    rows, ablated = {}, {}
    for label, overrides in variants.items():
        tag = "ablation_" + "_".join(f"{k}_{v}" for k, v in sorted(overrides.items()))
        ablated[label] = compare_out.get(("dvae_st", "exact")) if not overrides else None
        ablated[label] = ablated[label] or train_and_score(
            "mnist269", train269, test269, estimators_=["exact"], transform=True, k=3, n_train=compare_train_size,
            n_epochs=compare_epochs, tag=tag, **overrides)["exact"]
        summary = ablated[label].summary
        rows[label] = {"accuracy (%)": describe(summary, "test_accuracy", 1, 100),
                       "clusters used": f"{summary['clusters_used']:.1f}",
                       "NLL (nats)": describe(summary, "test_nll_nats", 1)}
    display(pd.DataFrame(rows).T.style.set_uuid("ablation").set_caption(
        f"D-VAE-ST, exact gradient, MNIST {{2, 6, 9}}, {n_seeds} seeds: robustness ablation"))
    print(*ch05.against(ablated, "both measures"), sep="\n")

# %% [markdown]
# ## Ten classes
#
# On ten-class MNIST ($K = 10$) we train the D-VAE-ST with every estimator of `big_estimators` and, as the
# model without a transformation, the D-VAE with the first of them, `ten_seeds` seeds each, for `epochs` epochs
# on `train_size` training images (0: all 50,000) of `batch_size` images. This is the chapter's longest
# training: the D-VAE-ST's test accuracy on ten classes was still rising after a thousand steps in the curves
# of `benchmarks/dvae_st_tenclass.md` (the comparison with a short budget below measures it on this page's
# seeds), so the CPU budget goes to these runs, with batches of 128 (the thesis's batches of 1000 at a learning
# rate of 5e-4 learned far less per unit of compute in the same benchmark). The estimators that
# `big_estimators` leaves out run on ten classes only in the `gpu` and `full` profiles, as does FashionMNIST
# (`datasets`); on {2, 6, 9} above every estimator ran. RELAX was in this profile's list until its first seed
# diverged (the loss became NaN at step 291 of 782, with random prototypes and no gradient clipping) while this
# page was being regenerated; it is left out until that is understood, so this section compares no estimators. Unlike there, the prototypes start at random here
# (`ten_prototype_init`; the section "Where the prototypes start" below says why and measures it).

# %%
ten, ten_out, ten_tests = {}, {}, {}
first = big_estimators[0]
for key in datasets:
    train_k, test_k = load(key)
    ten_tests[key] = test_k
    for model_name, transform, names in (("dvae", False, [first]), ("dvae_st", True, big_estimators)):
        outcomes = train_and_score(key, train_k, test_k, estimators_=names, transform=transform, k=10,
                                   n_train=train_size, n_epochs=epochs, tag=model_name, seeds=ten_seeds,
                                   prototype_init=ten_prototype_init)
        for estimator, outcome in outcomes.items():
            ten[(key, model_name, estimator)], ten_out[(key, model_name, estimator)] = outcome.summary, outcome
            print(f"{LABELS[key]:13s} {model_name:8s} {NAMES[estimator]:10s} {accuracy_text(outcome.summary)}")

# %%
for key in datasets:
    fig, axes = plots.plt.subplots(2, 1, figsize=(7, 1.9))
    for ax, model_name in zip(axes, ("dvae", "dvae_st")):
        acc, model = ranked(ten_out[(key, model_name, first)])[0]
        plots.image_grid(model.prototypes(), nrow=10, ax=ax,
                         title=f"{model_name} ({NAMES[first]}), worst seed: {100 * acc:.1f} %")
    fig.tight_layout()
    run.savefig(fig, f"prototypes_{key}")

# %% [markdown]
# **Figure: prototypes on the ten-class data sets**, for the *worst* seed of each model (the best seeds
# look cleaner; showing the worst is the honest choice). Prototypes that duplicate a class and classes that
# have no prototype are the typical failure; digits written in several styles ("1" upright and slanted,
# "2" with and without a loop) compete for prototypes that the D-VAE-ST can instead share through $t$.
#
# ### Where the prototypes start
#
# Data seeding was one of the two robustness measures on {2, 6, 9} (its ablation is above). On ten classes,
# k-means++ seeding picks ten images of the first batch, which need not show ten different digits, and in the
# benchmark `benchmarks/dvae_st_tenclass.md` random prototypes reached a higher accuracy than seeded ones on
# each of this page's three seeds after the same steps; so the ten-class runs start from
# `ten_prototype_init` (random by default). The same D-VAE-ST (the first estimator, same budget and seeds) is
# retrained here with the other initialisation and compared with the run above on the same seeds (when
# `ablation` is on).

# %%
init_out = {}
if "mnist" in datasets and ablation:
    train_k, test_k = load("mnist")
    other = "random" if ten_prototype_init == "data" else "data"
    init_out = {ten_prototype_init: ten_out[("mnist", "dvae_st", first)], other: train_and_score(
        "mnist", train_k, test_k, estimators_=[first], transform=True, k=10, n_train=train_size, n_epochs=epochs,
        tag=f"dvae_st_init_{other}", seeds=ten_seeds, prototype_init=other)[first]}
    init_names = {"data": "k-means++ seeded prototypes", "random": "random prototypes"}
    print(f"{init_names[other]}: {accuracy_text(init_out[other].summary)}")
    print(*ch05.against({init_names[k]: o for k, o in init_out.items()}, init_names[ten_prototype_init]), sep="\n")

# %% [markdown]
# ### A short budget: how much the training length matters, the marginal-KL weight, overclustering
#
# The same D-VAE-ST (the first estimator, $K = 10$, the same seeds) trained with the budget of this chapter's
# earlier default, `short_epochs` epochs on the first `short_train_size` training images, measures what the
# longer training above buys. At that short budget we also retrain it with each marginal-KL weight of
# `marginal_weights` ($\lambda = 0$ is the plain ELBO) and with more clusters than classes (overclustering,
# $K = 10 + $ `overcluster_extra`), for which the one-to-one Hungarian accuracy leaves the extra clusters
# unmatched and the many-to-one accuracy lets them share a class. Every comparison of this section is between
# runs of the same short budget, each a small fraction of the cost of one run above.

# %%
short, sweep_out, over_out = {}, {}, {}
if "mnist" in datasets:
    train_k, test_k = load("mnist")
    budget = dict(estimators_=[first], transform=True, n_train=short_train_size, n_epochs=short_epochs,
                  seeds=ten_seeds, prototype_init=ten_prototype_init)
    short = train_and_score("mnist", train_k, test_k, k=10, tag="dvae_st_short", **budget)[first]
    print(f"short budget: {accuracy_text(short.summary)}")
    print(ch05.budget_line(ten_out[("mnist", "dvae_st", first)], short, (train_size or len(train_k), epochs),
                           (short_train_size or len(train_k), short_epochs)))
    for w in marginal_weights:
        sweep_out[w] = short if w == marginal_weight else train_and_score(
            "mnist", train_k, test_k, k=10, tag=f"dvae_st_marginal{w:g}", marginal_weight=w, **budget)[first]
        s_ = sweep_out[w].summary
        print(f"λ = {w:g}: {accuracy_text(s_)}; clusters used {s_['clusters_used']:.1f}, "
              f"ELBO {describe(s_, 'test_elbo_nats', 1)} nats")
    for extra in overcluster_extra:
        over_out[10 + extra] = train_and_score("mnist", train_k, test_k, k=10 + extra, tag=f"dvae_st_k{10 + extra}",
                                               **budget)[first]
        print(f"K = {10 + extra}: {accuracy_text(over_out[10 + extra].summary)}; many-to-one "
              f"{describe(over_out[10 + extra].summary, 'test_many_to_one_accuracy', 1, 100, ' %')}")

# %%
if sweep_out:
    fig, ax = plots.plt.subplots(figsize=(5, 3.2))
    for w, o in sweep_out.items():
        accs = [100 * r["test_accuracy"] for r in o.runs]
        ax.plot([w] * len(accs), accs, "o", color="C0", alpha=0.6)
    ax.plot(list(sweep_out), [100 * o.summary["test_accuracy"] for o in sweep_out.values()], "-", color="C0")
    ax.set(xscale="symlog", xlabel="marginal-KL weight λ", ylabel="test accuracy (%)",
           title=f"D-VAE-ST ({NAMES[first]}), MNIST, K = 10, short budget")
    fig.tight_layout()
    run.savefig(fig, "marginal_weight_sweep")
    if marginal_weight in sweep_out:
        print(*ch05.sweep_lines(sweep_out, marginal_weight), sep="\n")

# %% [markdown]
# **Figure: sensitivity to the marginal-KL weight** at the short budget (dots: seeds; line: mean). The printed
# lines give the accuracy, the clusters used and the test ELBO per weight; the lines under the figure compare
# every weight with the one used everywhere else, with the 95 % interval over seeds of each difference. One
# might expect the extra term to trade ELBO for balanced clusters. Where the plain ELBO (λ = 0) ends in fewer
# clusters *and* a test ELBO whose difference lies below zero, the term helps the optimiser out of collapsed
# local optima rather than pulling it away from the ELBO's optimum.

# %% [markdown]
# ## A harder set: Omniglot alphabets
#
# Each alphabet of Omniglot's background set {cite}`lake2015omniglot` is a clustering problem of its own,
# with one class per character (Greek has 24) and twenty drawers per character: drawers 1–18 for
# training and 19–20 held out (the `valid` split of `c2f.data`). That is few images per class, many
# classes, and characters that differ in the topology of their strokes more than in pose. With only two
# held-out images per character, a one-to-one map chosen on the held-out images themselves is
# optimistic: it can pair almost any cluster with a character that happens to fit two images. So here
# the clusters are matched to characters on the **training** drawers, and that map is scored on the
# held-out drawers; the accuracy on the training drawers is reported next to it. Chance is $1/K$. Same
# models, estimator (`big_estimators[0]`), robustness measures and seeds as above, with $K$ equal to the
# number of characters.

# %%
omni, omni_out = {}, {}
for alphabet in omniglot_alphabets:
    key = f"omniglot_{alphabet.lower()}"
    LABELS[key] = f"Omniglot {alphabet}"
    o_train, o_test = (data.load("omniglot", split, device=device, binarize="dynamic", alphabets=[alphabet])
                       for split in ("train", "valid"))
    k = len(o_train.y.unique())
    print(f"{alphabet}: {k} characters, {len(o_train)} training and {len(o_test)} held-out images; "
          f"chance {100 / k:.1f} %")
    for model_name, transform in (("dvae", False), ("dvae_st", True)):
        outcome = train_and_score(key, o_train, o_test, estimators_=[first], transform=transform, k=k, n_train=0,
                                  n_epochs=omniglot_epochs, tag=model_name, match_on_train=True)[first]
        omni[(key, model_name)], omni_out[(key, model_name)] = outcome.summary, outcome
        print(f"  {model_name:8s} {accuracy_text(outcome.summary)}; on the training drawers "
              f"{describe(outcome.summary, 'train_accuracy', 1, 100, ' %')}")

# %%
for (key, model_name), outcome in omni_out.items():
    acc, worst = min(zip((r["train_accuracy"] for r in outcome.runs), outcome.models), key=lambda am: am[0])
    per_row = min(8, worst.cfg.num_classes)
    rows_ = -(-worst.cfg.num_classes // per_row)
    fig, ax = plots.plt.subplots(figsize=(1.0 * per_row, 1.0 * rows_ + 0.5))
    plots.image_grid(worst.prototypes(), nrow=per_row, ax=ax,
                     title=f"{LABELS[key]}, {model_name}: prototypes of the worst seed "
                           f"({100 * acc:.1f} % on the training drawers)")
    run.savefig(fig, f"prototypes_{key}_{model_name}")

# %% [markdown]
# **Figures: Omniglot prototypes** of the worst seed of each model (ranked on the training drawers). A
# prototype that shows one clean character has found that character; a blurred overlay merges characters
# with similar strokes, and two prototypes of the same character leave another character without one.
# With eighteen training images per class, one prototype per class is hard to reach.

# %% [markdown]
# ## Results
#
# All accuracies above are on the **test** split, averaged over `n_seeds` seeds, with the worst seed
# reported next to the mean. The thesis we follow {cite}`borea2021strimadec` reports accuracies on the
# **training** split and highlights the best of ten seeds: its 93.52 % for the D-VAE-ST with RELAX on MNIST
# is a best-of-10, whose mean is 77.3 % and worst 68.5 %, and it reports runs on digits {2, 6, 9} that
# collapsed into a single cluster (33.4 %, the share of the largest class) even with the exact gradient.
# Those numbers are therefore not comparable with the ones here, and a best-of-N number is never quoted on
# its own in this book.
#
# The CPU `default` profile trains the ten-class models for `epochs` epochs on `train_size` images (0: all
# 50,000), with `ten_seeds` seeds, and evaluates on the first `test_size` test images; the thesis trained for
# 150 epochs on 60,000 images with batches of 1000. Its ten-run mean (77.3 %) and worst run (68.5 %) are this
# book's target for the D-VAE-ST on ten-class MNIST with our stricter protocol (ten clusters, the **test**
# split, the posterior mode): the lines below say, for each estimator, whether this run's mean and worst seed
# reach them. The results on {2, 6, 9} are three-class accuracies and are not comparable with any ten-class
# number. The `full` profile (a GPU: all training and test images, every estimator, 5 seeds, 30 epochs)
# targets a mean test accuracy of at least 90 % for the D-VAE-ST on MNIST (met only when the 95 % interval
# over seeds lies above it). The lines below are computed from this run's record, whatever its profile; the
# tables after them rank the D-VAE-ST's estimators by mean test accuracy, each with its difference from the
# best and the 95 % interval of that difference over seeds; the line under each table says which estimators
# that interval separates from the best. The ten-class tables rest on `ten_seeds` seeds per estimator (the
# record card gives the number): where their line says that no estimator is separated, the ten-class runs do
# not rank the estimators.

# %%
target_acc = 0.90
for (key, model_name, estimator), s in ten.items():
    line = f"{LABELS[key]:13s} {model_name:12s} {NAMES[estimator]:9s} {accuracy_text(s)}"
    if "test_many_to_one_accuracy" in s:
        line += f"; many-to-one {100 * s['test_many_to_one_accuracy']:.1f} %"
    print(line)
for (key, model_name), s in omni.items():
    print(f"{LABELS[key]:13s} {model_name:12s} {NAMES[first]:9s} {accuracy_text(s)} (matched on the "
          f"training drawers); training drawers {100 * s['train_accuracy']:.1f} %")
below = [NAMES[e] for e in estimators if compare[("dvae_st", e)].get("test_accuracy_worst", 1.0) < 0.5]
print(f"estimators with a D-VAE-ST seed below 50 % on {{2, 6, 9}}: {', '.join(below) or 'none'}")
pairs = {f"{LABELS['mnist269']}, {NAMES[reference_estimator]}": [compare_out[(m, reference_estimator)]
                                                                  for m in ("dvae_st", "dvae")]}
pairs |= {f"{LABELS[key]}, {NAMES[first]}": [ten_out[(key, m, first)] for m in ("dvae_st", "dvae")] for key in datasets}
for label, (st, plain) in pairs.items():
    print(f"{label}: " + ch05.against({"the D-VAE-ST": st, "the D-VAE": plain}, "the D-VAE")[0])
for e in big_estimators if "mnist" in datasets else []:
    print(ch05.thesis_line(ten_out[("mnist", "dvae_st", e)], f"D-VAE-ST ({NAMES[e]}) on MNIST"))
if ("mnist", "dvae_st", first) in ten:
    acc = [r["test_accuracy"] for r in ten_out[("mnist", "dvae_st", first)].runs]
    print(f"D-VAE-ST on MNIST: mean test accuracy {100 * np.mean(acc):.1f} % over {ten_seeds} seeds against the "
          f"full-profile target of {100 * target_acc:.0f} %: {target_verdict(acc, target_acc)} ({run.profile} profile)")

# %%
rankings = {"MNIST {2, 6, 9}": {NAMES[e]: compare_out[("dvae_st", e)] for e in estimators}}
rankings |= {LABELS[key]: {NAMES[e]: ten_out[(key, "dvae_st", e)] for e in big_estimators} for key in datasets}
for i, (label, by_estimator) in enumerate(rankings.items()):
    table = ranking(by_estimator, "test_accuracy", unit="%", digits=1, scale=100)
    display(table.style.set_uuid(f"ranking{i}").set_caption(
        f"D-VAE-ST on {label}: estimators by mean test accuracy, best first"))
    print(ch05.ranking_line(table, label))

# %% [markdown]
# **What to take from this chapter.** The choice of gradient estimator matters most when the
# learning signal is weak: on the toy problem, from single samples, the toy section prints how much of the gap
# to the optimum each estimator leaves and how its variance compares with REINFORCE's; REBAR's control variate
# has no term for the constant that makes REINFORCE noisy here; and CONCRETE's relaxation optimises a
# different objective, whose mean gradient at logits that favour the best class points back towards the
# uniform policy. In the prototype models the learning signal is a log-likelihood of hundreds of nats; the
# ranking tables above say, with their intervals, how much the estimator matters there, on three classes after
# short training and on ten after the page's longest (the `full` profile trains long enough to tell whether
# the gaps close). What the training length buys on ten classes is said by the line of the short-budget
# section, which compares the page's budget with the short one (`short_epochs` epochs on `short_train_size`
# images) on the same seeds. On ten classes, the section on where the prototypes start compares seeded and
# random prototypes. Beyond the estimator, the optimisation landscape decides: solutions that use fewer
# prototypes than classes are local optima of the ELBO itself, reached even with the exact gradient. The
# ablation and the sweep of the marginal-KL weight show how much of the accuracy that extra term buys, and
# what it does to the ELBO. The spatial transformer lets each prototype stand for a family of shifted, scaled
# and slanted digits; the comparisons of the D-VAE-ST with the D-VAE above say whether that gains accuracy on
# digits (and, in the `gpu` and `full` profiles, on clothes). Omniglot's alphabets, with dozens of classes and
# eighteen training images each, test the limit of one prototype per class: compare each accuracy above with
# its chance level $1/K$ rather than with the digits. It is the first step from "which prototype" to "which
# prototype, where and how"; putting several such objects into one scene is the subject of
# {doc}`chapter 07 <07_air>`.

# %%
record = run.finish()
