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
datasets = ["mnist", "fashion_mnist"]  # the ten-class data sets
big_estimators = ["exact"]  # estimators trained on the ten-class data sets
train_size = 10000  # training images of the ten-class data sets (0 means all 50000)
epochs = 4  # epochs on the ten-class data sets
overcluster_extra = [2]  # extra clusters beyond the ten classes for the overclustering runs on MNIST
test_size = 2000  # first test images of the selected classes used by every evaluation (0 means all)
omniglot_alphabets = ["Greek"]  # Omniglot background alphabets clustered into their characters ([] to skip)
omniglot_epochs = 40
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
from c2f.estimators import run_toy, toy_values
from c2f.evaluate import (cluster_accuracy, cluster_assignments, evaluate, many_to_one_accuracy, summarise,
                          summarise_worst)
from c2f.models import DVAE, DVAEConfig
from c2f.train import TrainConfig, train_or_load

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
#
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

# %% [markdown]
# The variance ranking is the point of the toy. REINFORCE's signal $f(z) \approx 0.22$ barely changes from
# sample to sample, so almost all of its variance comes from multiplying a large constant by the score;
# any baseline that learns that constant removes it. NVIL and RELAX do (RELAX's network learns it through
# the variance objective), and their variance falls by several orders of magnitude. REBAR's control
# variate is $\eta f$ at a *relaxed* sample, which for this $f$ is far from $f$ at a vertex, so it cannot
# cancel much: REBAR stays close to REINFORCE. CONCRETE (here at τ = 0.5, which is also the initial
# temperature of REBAR and RELAX) has a low, steady variance but stalls near the uniform policy; the next
# two sweeps show why.
#
# ### Batch size and temperature
#
# Averaging more samples per step divides the variance of every estimator by the batch size, so every
# *unbiased* estimator converges once the batch is large enough. CONCRETE does not: its mean gradient is
# the gradient of the relaxed objective $\mathbb E[f(\tilde z)]$, whose minimum for this $f$ lies close to
# the uniform policy, because soft samples near $(1/3, 1/3, 1/3)$ are close to the almost-uniform target.
# No number of samples removes a bias, and the temperature only trades it against variance.

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
    run.log(f"toy/{name}/batch{big}", {"final_loss": float(sweep[(big, name)]["loss"][:, -1].mean())})

# %% [markdown]
# **Figure: the largest batch of the sweep.** The same panels as above with the gradient averaged over
# a batch of samples at every step (the variance panel still shows the single-sample variance, which
# does not depend on the batch). The unbiased estimators now approach the optimum; CONCRETE stays at the
# uniform policy's loss.

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
# **Figure: CONCRETE's temperature.** Higher temperatures give smoother relaxed samples and a lower
# variance (right), lower temperatures a smaller bias but a larger variance; at none of them does the
# expected loss of the discrete policy (left) approach the optimum within the run. The unit tests check the
# same thing directly: with 40,000 samples the mean CONCRETE gradient is many standard errors away from
# the exact gradient, while the mean of every unbiased estimator agrees with it.
#
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
#
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
#
# **Robust training.** A prototype model can fall into a degenerate local optimum in which a few
# prototypes explain all images and the rest are never used; the thesis reports runs in which all images
# went to one cluster, even with the exact gradient. Two measures, both switched on here and ablated
# below, make training reliable:
#
# 1. *Data seeding* (`prototype_init="data"`): before the first step the prototypes are set to $K$ images of
#    the first batch chosen by k-means++ seeding (distant images preferred), lightly blurred, instead of
#    $K$ nearly identical random blobs.
# 2. *A batch-marginal KL* (`marginal_weight`): the ELBO's KL is a per-image term,
#    $\log K - H[q(z\mid x)]$, which is the same whether all images go to one cluster or are spread over
#    all of them. We add $\lambda\, \mathrm{KL}\big(\bar q(z) \,\|\, \mathrm{Cat}(1/K)\big)$, where
#    $\bar q$ is the average of $q(z \mid x)$ over the batch, which is zero when the clusters are used
#    equally. This term is **not part of the ELBO**; the reported ELBOs and likelihoods do not include it.
#
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
    test = data.load(name, "test", device=device, binarize="dynamic", classes=classes).subset(test_size)
    return train, test


def train_and_score(key: str, train, test, *, estimator: str, transform: bool, k: int, n_train: int,
                    n_epochs: int, tag: str, match_on_train: bool = False, **overrides) -> tuple[dict, list]:
    """Train `n_seeds` models of one setting (or load them from the cache) and score them on the test
    split; return the summary (mean, _std, _worst) and the models. With `match_on_train` the clusters are
    matched to classes on the training images and that map is scored on the test images."""
    runs, models = [], []
    n_classes = len(test.y.unique())
    for s in [seed + i for i in range(n_seeds)]:
        cfg = DVAEConfig(num_classes=k, estimator=estimator, transform=transform, arch=arch,
                         transform_prior_std=transform_prior_std, marginal_weight=marginal_weight,
                         prototype_init=prototype_init)
        cfg = DVAEConfig(**{**cfg.__dict__, **overrides})
        torch.manual_seed(s)
        model = DVAE(cfg).to(device)
        train_cfg = TrainConfig(epochs=n_epochs, batch_size=batch_size, lr=lr, seed=s)
        train_or_load(model, train.subset(n_train), train_cfg, name=f"05-{tag}-{key}-{estimator}-seed{s}",
                      retrain=retrain)
        clusters, labels = cluster_assignments(model, test, seed=s)
        fit = cluster_assignments(model, train.subset(n_train), seed=s) if match_on_train else None
        metrics = evaluate(model, test, seed=s, iw_samples=iw_samples if transform else 1)
        result = {"test_accuracy": cluster_accuracy(clusters, labels, k, matched_on=fit),
                  "test_elbo_nats": metrics["elbo_nats"], "test_nll_nats": metrics["nll_nats"],
                  "test_kl_nats": metrics["kl_nats"], "clusters_used": float(len(clusters.unique()))}
        if fit is not None:
            result["train_accuracy"] = cluster_accuracy(*fit, k)
        if k > n_classes:
            result["test_many_to_one_accuracy"] = many_to_one_accuracy(clusters, labels, k)
        runs.append(result)
        models.append(model)
    summary = summarise(runs)
    summary.update(summarise_worst(runs, [key_ for key_ in runs[0] if key_.endswith("accuracy")]))
    summary.update(summarise_worst(runs, ["test_nll_nats"], higher_is_better=False))
    run.log(f"{tag}/{key}/{estimator}", summary)
    return summary, models


def describe(summary: dict) -> str:
    acc = summary["test_accuracy"]
    return (f"test accuracy {100 * acc:.1f} ± {100 * summary['test_accuracy_std']:.1f} % "
            f"(worst {100 * summary['test_accuracy_worst']:.1f} %), NLL {summary['test_nll_nats']:.1f} nats")


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
compare, compare_models = {}, {}
for estimator in estimators:
    for model_name, transform in (("dvae", False), ("dvae_st", True)):
        summary, models = train_and_score("mnist269", train269, test269, estimator=estimator, transform=transform,
                                          k=3, n_train=compare_train_size, n_epochs=compare_epochs, tag=model_name)
        compare[(model_name, estimator)], compare_models[(model_name, estimator)] = summary, models
        print(f"{model_name:8s} {NAMES[estimator]:10s} {describe(summary)}")

# %% [markdown]
# The table gives, for each estimator, the test accuracy (mean ± std over seeds, and the worst seed) and
# the test NLL of both models.

# %%
table = pd.DataFrame({
    NAMES[e]: {f"{m} accuracy (%)": f"{100 * compare[(m, e)]['test_accuracy']:.1f} ± "
                                    f"{100 * compare[(m, e)]['test_accuracy_std']:.1f}"
               for m in ("dvae", "dvae_st")}
    | {f"{m} worst (%)": f"{100 * compare[(m, e)]['test_accuracy_worst']:.1f}" for m in ("dvae", "dvae_st")}
    | {f"{m} NLL (nats)": f"{compare[(m, e)]['test_nll_nats']:.1f}" for m in ("dvae", "dvae_st")}
    for e in estimators}).T
display(table.style.set_uuid("estimators").set_caption(f"MNIST {{2, 6, 9}}, test split ({len(test269)} images), K = 3, "
                                f"{n_seeds} seeds, {compare_epochs} epochs on {compare_train_size or len(train269)} "
                                f"images; {run.profile} profile"))

# %% [markdown]
# ### Prototypes and reconstructions
#
# The prototypes of the worst and the best seed of the D-VAE and the D-VAE-ST (exact estimator), and
# reconstructions of test images by the best D-VAE-ST: the image, its inferred prototype and the prototype
# warped by the posterior mean of $t$.

# %%
def by_accuracy(models, test):
    scored = [(cluster_accuracy(*cluster_assignments(m, test), m.cfg.num_classes), m) for m in models]
    return sorted(scored, key=lambda am: am[0])


reference_estimator = "exact" if "exact" in estimators else estimators[0]
fig, axes = plots.plt.subplots(2, 2, figsize=(7, 2.6))
for row, model_name in enumerate(("dvae", "dvae_st")):
    ranked = by_accuracy(compare_models[(model_name, reference_estimator)], test269)
    for col, (acc, model) in enumerate((ranked[0], ranked[-1])):
        plots.image_grid(model.prototypes(), nrow=3, ax=axes[row, col],
                         title=f"{model_name}, {'worst' if col == 0 else 'best'} seed: {100 * acc:.1f} %")
fig.tight_layout()
run.savefig(fig, "prototypes_269")

x = test269.fixed_binarization(seed).x[:12]
best_st = by_accuracy(compare_models[("dvae_st", reference_estimator)], test269)[-1][1]
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
    rows = {}
    for label, overrides in variants.items():
        tag = "ablation_" + "_".join(f"{k}_{v}" for k, v in sorted(overrides.items()))
        summary = compare.get(("dvae_st", "exact")) if not overrides else None
        summary = summary or train_and_score("mnist269", train269, test269, estimator="exact", transform=True, k=3,
                                     n_train=compare_train_size, n_epochs=compare_epochs, tag=tag, **overrides)[0]
        rows[label] = {"accuracy (%)": f"{100 * summary['test_accuracy']:.1f} ± {100 * summary['test_accuracy_std']:.1f}",
                       "worst (%)": f"{100 * summary['test_accuracy_worst']:.1f}",
                       "clusters used": f"{summary['clusters_used']:.1f}",
                       "NLL (nats)": f"{summary['test_nll_nats']:.1f}"}
    display(pd.DataFrame(rows).T.style.set_uuid("ablation").set_caption(
        f"D-VAE-ST, exact gradient, MNIST {{2, 6, 9}}, {n_seeds} seeds: robustness ablation"))

# %% [markdown]
# ## Ten classes: MNIST and FashionMNIST
#
# On the ten-class data sets ($K = 10$) we train the D-VAE and the D-VAE-ST with `big_estimators`, and the
# D-VAE-ST with more clusters than classes on MNIST (overclustering, $K = 10 + $ `overcluster_extra`), for
# which the one-to-one Hungarian accuracy leaves the extra clusters unmatched and the many-to-one accuracy
# lets them share a class.

# %%
ten, ten_models, ten_tests = {}, {}, {}
for key in datasets:
    train_k, test_k = load(key)
    ten_tests[key] = test_k
    for estimator in big_estimators:
        for model_name, transform in (("dvae", False), ("dvae_st", True)):
            summary, models = train_and_score(key, train_k, test_k, estimator=estimator, transform=transform, k=10,
                                              n_train=train_size, n_epochs=epochs, tag=model_name)
            ten[(key, model_name, estimator)], ten_models[(key, model_name, estimator)] = summary, models
            print(f"{LABELS[key]:13s} {model_name:8s} {NAMES[estimator]:10s} {describe(summary)}")
    if key == "mnist":
        for extra in overcluster_extra:
            summary, models = train_and_score(key, train_k, test_k, estimator=big_estimators[0], transform=True,
                                              k=10 + extra, n_train=train_size, n_epochs=epochs,
                                              tag=f"dvae_st_k{10 + extra}")
            ten[(key, f"dvae_st_k{10 + extra}", big_estimators[0])] = summary
            ten_models[(key, f"dvae_st_k{10 + extra}", big_estimators[0])] = models
            print(f"{LABELS[key]:13s} K = {10 + extra}: {describe(summary)}; many-to-one "
                  f"{100 * summary['test_many_to_one_accuracy']:.1f} ± "
                  f"{100 * summary['test_many_to_one_accuracy_std']:.1f} %")

# %%
for key in datasets:
    fig, axes = plots.plt.subplots(2, 1, figsize=(7, 1.9))
    for ax, model_name in zip(axes, ("dvae", "dvae_st")):
        acc, model = by_accuracy(ten_models[(key, model_name, big_estimators[0])], ten_tests[key])[0]
        plots.image_grid(model.prototypes(), nrow=10, ax=ax, title=f"{model_name}, worst seed: {100 * acc:.1f} %")
    fig.tight_layout()
    run.savefig(fig, f"prototypes_{key}")

# %% [markdown]
# **Figure: prototypes on the ten-class data sets**, for the *worst* seed of each model (the best seeds
# look cleaner; showing the worst is the honest choice). Prototypes that duplicate a class and classes that
# have no prototype are the typical failure; digits written in several styles ("1" upright and slanted,
# "2" with and without a loop) compete for prototypes that the D-VAE-ST can instead share through $t$.

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
omni, omni_models, omni_train = {}, {}, {}
for alphabet in omniglot_alphabets:
    key = f"omniglot_{alphabet.lower()}"
    LABELS[key] = f"Omniglot {alphabet}"
    o_train, o_test = (data.load("omniglot", split, device=device, binarize="dynamic", alphabets=[alphabet])
                       for split in ("train", "valid"))
    k, omni_train[key] = len(o_train.y.unique()), o_train
    print(f"{alphabet}: {k} characters, {len(o_train)} training and {len(o_test)} held-out images; "
          f"chance {100 / k:.1f} %")
    for model_name, transform in (("dvae", False), ("dvae_st", True)):
        summary, models = train_and_score(key, o_train, o_test, estimator=big_estimators[0], transform=transform,
                                          k=k, n_train=0, n_epochs=omniglot_epochs, tag=model_name,
                                          match_on_train=True)
        omni[(key, model_name)], omni_models[(key, model_name)] = summary, models
        print(f"  {model_name:8s} {describe(summary)}; on the training drawers "
              f"{100 * summary['train_accuracy']:.1f} ± {100 * summary['train_accuracy_std']:.1f} %")

# %%
for (key, model_name), models in omni_models.items():
    _, worst = by_accuracy(models, omni_train[key])[0]  # ranked on the training drawers
    fig, ax = plots.plt.subplots(figsize=(7, 0.5 + 0.3 * -(-worst.cfg.num_classes // 24)))
    plots.image_grid(worst.prototypes(), nrow=min(24, worst.cfg.num_classes), ax=ax,
                     title=f"{LABELS[key]}, {model_name}: prototypes of the worst seed")
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
# reported next to the mean. The thesis we follow reports accuracies on the **training** split and
# highlights the best of ten seeds: its 93.52 % for the D-VAE-ST with RELAX on MNIST is a best-of-10,
# whose mean is 77.3 % and worst 68.5 %, and it reports runs on digits {2, 6, 9} that collapsed into a
# single cluster (33.4 %, the share of the largest class) even with the exact gradient. Those numbers are
# therefore not comparable with the ones here, and a best-of-N number is never quoted on its own in this
# book.
#
# The CPU `default` profile trains each model for a few epochs on a subset of the training images and
# evaluates on the first 2,000 test images, so its ten-class accuracies are those of briefly trained
# models: a D-VAE-ST trained for 4 epochs on 10,000 MNIST images clusters far worse than one trained for
# 150 epochs on 60,000, and it should not be compared with the thesis's mean either. On {2, 6, 9} the
# default profile already separates the estimators: with Exact, CONCRETE, REBAR and RELAX even the worst
# seed of the D-VAE-ST comes within about five points of the thesis's *best* run (on the test split,
# where the thesis used the training split), while REINFORCE and NVIL still have seeds below 50 %; the
# ablation shows what the two robustness measures do. The `full` profile (a GPU: all training images and test images, all estimators, 5 seeds, 30 epochs)
# targets a mean test accuracy of at least 90 % for the D-VAE-ST on MNIST; the lines below are computed
# from this run's record, whatever its profile.

# %%
target_acc = 0.90
for (key, model_name, estimator), s in ten.items():
    line = f"{LABELS[key]:13s} {model_name:12s} {NAMES[estimator]:9s} {describe(s)}"
    if "test_many_to_one_accuracy" in s:
        line += f"; many-to-one {100 * s['test_many_to_one_accuracy']:.1f} %"
    print(line)
for (key, model_name), s in omni.items():
    print(f"{LABELS[key]:13s} {model_name:12s} {NAMES[big_estimators[0]]:9s} {describe(s)} (matched on the "
          f"training drawers); training drawers {100 * s['train_accuracy']:.1f} %")
if ("mnist", "dvae_st", big_estimators[0]) in ten:
    acc = ten[("mnist", "dvae_st", big_estimators[0])]["test_accuracy"]
    print(f"D-VAE-ST on MNIST: mean test accuracy {100 * acc:.1f} % over {n_seeds} seeds against the full-profile "
          f"target of {100 * target_acc:.0f} %: {'met' if acc >= target_acc else 'not met'} ({run.profile} profile)")

# %% [markdown]
# **What to take from this chapter.** The choice of gradient estimator matters most when the learning
# signal is weak: on the toy problem only the estimators that learn a baseline (NVIL, RELAX) or that
# enumerate (Exact) reach the optimum from single samples, and CONCRETE's relaxation optimises the wrong
# objective however many samples it averages. In the prototype models the learning signal is a
# log-likelihood of hundreds of nats: plain REINFORCE, and NVIL until its baseline has learned that scale,
# lag far behind in short training, while Exact, CONCRETE, REBAR and RELAX end up within the seed-to-seed
# spread of each other (in the CPU default run; the `full` profile trains long enough to tell whether the
# gap closes). Beyond the estimator, the optimisation landscape decides: solutions that use fewer
# prototypes than classes are local optima of the ELBO itself, reached even with the exact gradient. The
# ablation shows the batch-marginal KL doing most of the work of avoiding them, with data seeding helping
# when that term is off; both remove collapses far more effectively than a better estimator. The spatial
# transformer lets each prototype stand for a family of shifted, scaled and slanted digits: it gains tens
# of nats in likelihood and many points of accuracy on digits, and less on clothes, whose classes differ
# in texture and shape more than in pose. Omniglot's alphabets, with dozens of classes and eighteen
# training images each, show the limit of one prototype per class: compare each accuracy above with
# its chance level $1/K$ rather than with the digits. It is the first step from "which prototype" to "which
# prototype, where and how": the next chapter puts several such objects into one scene.

# %%
record = run.finish()
