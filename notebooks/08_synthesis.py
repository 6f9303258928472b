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
# # Synthesis: every model family under one protocol
#
# Each chapter so far measured its own models under its own conditions: its own training subset, its own test
# subset, its own number of importance samples $K$, its own epochs. Their numbers cannot be laid side by side.
# This chapter trains one representative of every single-image family of chapters 01–06 **under one
# protocol** and asks the book's question of all of them with **one measure**: does the model put the coarse
# content of an image (here: which digit it is) into the first nats of its code, and the fine detail later?
#
# No paper in this field compares Conv-DRAW, the progressive VAEs, ladder and hierarchical VAEs, PixelVAE and
# a discrete clustering model side by side; every number below comes from this page's own runs, so the
# comparison is between models trained on the same images for the same number of epochs and scored on the
# same test images.

# %% tags=["parameters"]
profile = "default"  # the parameter profile this run was executed with
seed = 0  # base seed: run i of n_seeds uses seed + i
n_seeds = 3  # independent training runs per family (mean ± std and the worst seed reported when > 1)
train_size = 7000  # training images (0 means all 50000)
test_size = 500  # first test images, one fixed binarization, used by every evaluation (0 means all 10000)
probe_train_size = 5000  # training images whose codes fit the linear probes (0 means all 50000)
batch_size = 128
lr = 1e-3
epochs = 2  # every family; Multiple: each of its G small VAEs
kl_warmup_epochs = 1.0  # linear KL weight 0 -> 1, every family
grad_clip = 100.0  # maximum gradient norm, every family
iw_samples = 10  # importance samples K for every test NLL
iw_batch = 2000  # images decoded at once by the IW estimate (memory)
families = ["vae", "convdraw", "multiple", "single", "rnn", "quotient", "hvae", "lvae", "vlae", "pixelvae",
            "dvae_st"]
latent_dim = 32  # VAE (chapter 01's conv VAE)
conv_channels = [32, 64]  # VAE encoder channels; the decoder mirrors them
groups = 10  # progressive models: G groups of one latent each (chapter 02)
progressive_hidden = [256]
iterations = 6  # Conv-DRAW (chapter 03): T
convdraw_hidden = 16
convdraw_latent_channels = 2
convdraw_read_channels = 16
convdraw_kernel = 3
latent_dims = [32, 16, 8]  # HVAE, LVAE, VLAE (chapter 04): z_1 (nearest the image) .. z_L
hier_hidden = [256, 128, 64]
pixel_latent_dim = 16  # PixelVAE (chapter 06)
pixel_layers = 3
pixel_channels = 16
pixel_kernel_size = 3  # the first gated layer uses pixel_kernel_size + 2
pixel_enc_channels = [16, 32]
pixel_conv_features = 128
dvae_marginal_weight = 30.0  # D-VAE-ST (chapter 05): weight of the batch-marginal KL (0 gives the plain ELBO)
nats_budgets = [2.0, 5.0, 10.0, 20.0, 40.0]  # the class accuracy reached within these many nats is compared
retrain = False  # ignore cached checkpoints and train again

# %%
import numpy as np
import pandas as pd
import torch

import c2f
from c2f import data, plots
from c2f.evaluate import cluster_accuracy, cluster_assignments, describe, evaluate, kl_active_units
from c2f.experiment import Trial, parameter_count, run_trials, seed_list
from c2f.findings import ch08
from c2f.models.factory import synthesis_model
from c2f.stats import ranking
from c2f.synthesis import FAMILIES, accuracy_within, prefix_measures, probe
from c2f.train import TrainConfig

run = c2f.Run.start("08_synthesis", globals())
device = run.device
seeds = seed_list(seed, n_seeds)

# %% [markdown]
# ## The protocol
#
# * **Data.** MNIST with *dynamic* binarization {cite}`burda2016iwae`: every time a training image is used,
#   each pixel is redrawn as a Bernoulli sample of its grey level. Every family trains on the same first
#   `train_size` training images (all 50,000 in the `gpu` and `full` profiles).
# * **Evaluation.** One fixed binarization (seed 0) of the first `test_size` test images, the same for every
#   family and seed: the ELBO (one posterior sample, KLs in closed form where the model allows), the
#   importance-weighted NLL with the **same $K$** for every family, bits per dimension from that NLL.
# * **Budget.** The same number of epochs for every family, batch size, Adam learning rate, KL warm-up and
#   gradient clipping. Multiple, which trains its $G$ small VAEs one after another, gives each of them the
#   same epochs. The measured training time per epoch is part of the table, because an epoch costs very
#   different amounts of compute in different families.
# * **Seeds.** `n_seeds` seeds per family; with several, every cell is mean ± std and the worst seed.
#
# Each family keeps the architecture of its chapter's CPU `default` profile (the parameter count of each is in
# the table): the comparison is between the models the earlier chapters studied, at the same training budget,
# not at a matched parameter count.

# %%
train = data.load("mnist", "train", device=device).subset(train_size, seed=None)
test = data.load("mnist", "test", device=device).subset(test_size, seed=None)
probe_train = data.load("mnist", "train", device=device).subset(probe_train_size, seed=None)
print(f"MNIST, dynamic binarization: {len(train)} training images, {len(test)} test images (one fixed "
      f"binarization); linear probes fitted on the codes of {len(probe_train)} training images")

# %% [markdown]
# ## The families
#
# | name | model | chapter | how its code is ordered, coarse first |
# |---|---|---|---|
# | `vae` | convolutional VAE {cite}`kingma2014vae` | {doc}`01 <01_vae>` | no order of its own: units by KL, largest first |
# | `convdraw` | Conv-DRAW {cite}`gregor2016conceptual` | {doc}`03 <03_convdraw>` | iterations $t = 1..T$ |
# | `multiple`, `single`, `rnn`, `quotient` | progressive VAEs | {doc}`02 <02_progressive>` | latent groups $1..G$ |
# | `hvae`, `lvae`, `vlae` | hierarchical VAEs {cite}`sonderby2016ladder,zhao2017ladder` | {doc}`04 <04_hierarchical>` | latent layers, the top one first |
# | `pixelvae` | PixelVAE {cite}`gulrajani2017pixelvae` | {doc}`06 <06_pixelvae>` | units by KL (the PixelCNN decoder adds the rest) |
# | `dvae_st` | D-VAE with a spatial transformer | {doc}`05 <05_discrete>` | the class, then the transformation |
#
# The configurations are each chapter's `default` ones (Multiple feeds its residual to each small VAE,
# `rnn` concatenates the encodings of image and reconstruction, the D-VAE-ST is trained with the exact
# gradient and the batch-marginal KL). Every model is a class of `c2f.models`, built from this chapter's
# parameters by `c2f.models.factory.synthesis_model`.

# %%
train_cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, kl_warmup_epochs=kl_warmup_epochs,
                        grad_clip=grad_clip)
trials = [Trial(f, lambda f=f: synthesis_model(f, run.params).to(device), train_cfg) for f in families]
n_params = {f: parameter_count(synthesis_model(f, run.params)) for f in families}
print(", ".join(f"{f} {n:,}" for f, n in n_params.items()) + " parameters")
print(f"budget of every family, per seed: {len(train):,} training images, {epochs} epochs of batches of "
      f"{batch_size} = {epochs * -(-len(train) // batch_size)} steps (Multiple: for each of its {groups} stages); "
      f"scored on {len(test)} test images with K = {iw_samples}, probes fitted on {len(probe_train):,} training "
      f"codes; {n_seeds} seed(s)")

# %% [markdown]
# ## One measure of coarse-to-fine
#
# Order a model's code into parts $c_1, c_2, \dots$ from coarse to fine, the way the model defines itself
# (the table above). For every prefix $c_{\le g}$ we measure three things on the test images:
#
# * its **rate**, the nats the model pays for it: $R_g = \sum_{i \le g} \mathbb E_x\, \mathrm{KL}_i(x)$, the
#   test KL of its parts (the KL that enters the ELBO, so $R_G$ is the model's total KL);
# * its **distortion** $D_g = -\mathbb E_x \log p_\theta(x \mid c_{\le g})$ in nats: the image's likelihood
#   under the decoder with the prefix at its posterior mean and the rest completed the way the model
#   completes a partial code: the (conditional) prior mean, or, for the progressive VAEs, which were trained
#   to decode prefixes, by leaving the later groups out;
# * its **class information**, the test accuracy of a *linear probe* {cite}`alain2017probes`: a multinomial
#   logistic regression (scikit-learn {cite}`pedregosa2011sklearn`) on the prefix's posterior means, fitted on
#   the codes of `probe_train_size` training images and scored on the test images.
#
# A model that orders its information from coarse to fine reaches a high class accuracy at a small rate. The
# rate bounds what a sampled prefix can tell about the image, $I(x; c_{\le g}) \le R_g$, and so about its class;
# the class itself is worth at most $\log 10 \approx 2.3$ nats. A code that spends its first few nats on the
# class can therefore be read by a linear probe long before it reconstructs the strokes. (The probe reads the
# posterior means, the usual read-out; a mean can show a little more than a sample of a broad posterior
# carries, so the rate is the price of the prefix, not a strict bound on the probe.) The probe sees only what the
# prefix makes linearly readable; a nonlinear code of the class would be underrated, which the full code's
# accuracy (the last point of every curve) puts in proportion.

# %%
def score(model, s):  # every seed's model on the same binarization and importance samples (seed 0)
    m = evaluate(model, test, iw_samples=iw_samples, seed=0, iw_batch=iw_batch, per_image=True)
    kl = m.pop("kl_per_dim")
    out, order = {f"mnist/test_{k}": v for k, v in m.items()}, model.code_order(kl)
    if order.clusters:  # a clustering model: its clusters matched to the classes (Hungarian method)
        out["mnist/cluster_accuracy"] = cluster_accuracy(*cluster_assignments(model, test), 10)
    else:
        out["mnist/kl_active_units"] = kl_active_units(kl)
    curve = prefix_measures(model, order, kl, test, probe_train)
    for g, c in enumerate(curve, 1):
        out.update({f"mnist/prefix_kl_nats@{g}": c["kl_nats"], f"mnist/prefix_recon_nats@{g}": c["recon_nats"],
                    f"mnist/probe_accuracy@{g}": c["probe_accuracy"]})
    return {**out, "labels": order.labels, "order": order.kind}


# %%
results = run_trials(trials, train, seeds=seeds, score=score, run=run, key="08", retrain=retrain)
wall = {f: r.wall_s for f, r in results.items()}  # training (or loading from the cache) and scoring, every seed
summaries = {f: r.summary for f, r in results.items()}
secs = {f: float(np.mean(r.train_seconds)) / epochs for f, r in results.items()}  # training wall time per epoch
for f, r in results.items():
    run.log(f"{f}/mnist", {"train_s_per_epoch": secs[f], "train_and_score_wall_s": wall[f]})
    print(f"{f:9s} test ELBO {describe(r.summary, 'mnist/test_elbo_nats')}, NLL (K={iw_samples}) "
          f"{describe(r.summary, 'mnist/test_nll_nats')} nats; {secs[f]:.1f} s per training epoch; "
          f"{wall[f]:.0f} s to train (or load) and score {n_seeds} seed(s) in this run")

# %% [markdown]
# ## One table
#
# Every family on the same test images with the same $K$. **KL-active** counts the parts of the code that
# carry more than 0.1 nats on average (units for the VAE, the hierarchies and the PixelVAE; groups for the
# progressive models; iterations for Conv-DRAW). **Class accuracy** is the linear probe on the whole code and,
# for the D-VAE-ST (a clustering model, its own row type), the accuracy of its clusters matched one-to-one to
# the classes; its NLL sums the class out exactly and importance-samples the transformation.
# The training time is the wall time of one epoch (all $G$ stages for Multiple) on this run's device, as
# measured when the model was trained.

# %%
def row(f):
    s, n_parts = summaries[f], len(results[f].runs[0]["labels"])
    cells = {"chapter": FAMILIES[f][0], "parameters": f"{n_params[f]:,}",
             "test ELBO": describe(s, "mnist/test_elbo_nats"), f"NLL (K={iw_samples})": describe(s, "mnist/test_nll_nats"),
             "bits/dim": describe(s, "mnist/test_bits_per_dim", digits=3), "KL": describe(s, "mnist/test_kl_nats"),
             "KL-active": describe(s, "mnist/kl_active_units", digits=1) if "mnist/kl_active_units" in s else "–",
             "class accuracy (probe)": describe(s, f"mnist/probe_accuracy@{n_parts}", digits=3),
             "cluster accuracy": describe(s, "mnist/cluster_accuracy", digits=3) if "mnist/cluster_accuracy" in s
             else "–",
             "s / epoch": f"{secs[f]:.1f}"}
    return cells


table = pd.DataFrame({f: row(f) for f in families}).T
display(table.style.set_caption(
    f"MNIST, dynamic binarization, nats; {len(train)} training images, {epochs} epochs; {len(test)} test images "
    f"(one fixed binarization); {'mean ± std (worst) over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else 'one seed'}; "
    f"{run.profile} profile").set_uuid("synthesis"))

# %%
nll = {f: summaries[f]["mnist/test_nll_nats"] for f in families}
display(ranking({f: results[f] for f in families}, "mnist/test_nll_nats", digits=2).style.set_caption(
    f"families by test NLL (K={iw_samples}), best first, each against the best, with 95 % intervals over the "
    f"{len(test)} test images" + (f" and {n_seeds} seeds" if n_seeds > 1 else " (one seed)")).set_uuid("nll_ranking"))
print(f"training time per epoch: {min(secs.values()):.1f} s ({min(secs, key=secs.get)}) to "
      f"{max(secs.values()):.1f} s ({max(secs, key=secs.get)})")

# %% [markdown]
# At the CPU `default` budget (a few epochs on part of the training images: the budget line above) no family
# is near convergence, and the likelihoods are far from those of the papers and of the chapters' `full`
# profiles; what this table compares is the families at one equal, small budget. Families that converge slowly
# per epoch (those trained group by group or step by step) may be disadvantaged by such a budget, and the
# seconds per epoch say what a longer one would cost each of them.
#
# ## Coarse to fine, family by family
#
# The figure puts every family's prefixes on one pair of axes: the distortion (left) and the linear probe's
# class accuracy (right) against the nats the prefix costs. Each point is one prefix, the first part on the
# left; the last point of a curve is the whole code. The grey dashed line is the accuracy of a probe with no code
# at all (the most frequent class). A coarse-to-fine model rises steeply on the right panel: its first,
# cheap parts already tell the digit.

# %%
def curve(s: dict, n_parts: int) -> list[dict]:
    """The prefixes' rate, distortion and probe accuracy from a summary or one seed's run."""
    names = (("kl_nats", "prefix_kl_nats"), ("recon_nats", "prefix_recon_nats"), ("probe_accuracy", "probe_accuracy"))
    return [{k: s[f"mnist/{name}@{g}"] for k, name in names} for g in range(1, n_parts + 1)]


n_parts = {f: len(results[f].runs[0]["labels"]) for f in families}
curves = {f: curve(summaries[f], n_parts[f]) for f in families}
chance = probe(torch.zeros(len(probe_train), 0), probe_train.y, torch.zeros(len(test), 0), test.y)
fig, axes = plots.plt.subplots(1, 2, figsize=(13, 4.5))
dashed = [f for f in families if f in ("convdraw", "hvae", "lvae", "vlae")]  # told apart from vae, quotient
plots.rate_curves({f: ([c["kl_nats"] for c in cv], [c["recon_nats"] for c in cv]) for f, cv in curves.items()},
                  "rate of the prefix: KL (nats)", "distortion −log p(x | prefix) (nats)", ax=axes[0], dashed=dashed)
plots.rate_curves({f: ([c["kl_nats"] for c in cv], [c["probe_accuracy"] for c in cv]) for f, cv in curves.items()},
                  "rate of the prefix: KL (nats)", "linear-probe class accuracy (test)", ax=axes[1], dashed=dashed)
axes[1].axhline(chance, ls="--", color="grey", lw=1)
for ax in axes:
    for line in ax.get_lines()[:len(curves)]:
        line.set(marker="o", markersize=3.5)  # the dashed lines too: every point is a prefix
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
axes[0].get_legend().remove()
axes[1].legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
fig.suptitle(f"Every family's code, coarse first: {len(test)} test images, {epochs} epoch(s) on {len(train)} images")
run.savefig(fig, "coarse_to_fine")

# %% [markdown]
# *Figure: left, the distortion of every prefix of every family's code against its rate (both in nats; the
# x-axis is linear below 1 nat and logarithmic above); right, the class accuracy of a linear probe on the
# same prefix. One line per family, in the book's family colours (Conv-DRAW and the hierarchies dashed, to tell
# them from the VAE and the quotient model); mean over seeds.*
#
# The table below reads the right panel at fixed budgets: the class accuracy of the longest prefix that costs
# at most $R$ nats (the chance level where even the first part costs more). The last column is the rate at
# which the probe first reaches 90 % of the accuracy of the family's whole code.

# %%
def nats_to_90(cv):
    target = 0.9 * cv[-1]["probe_accuracy"]
    return next(c["kl_nats"] for c in cv if c["probe_accuracy"] >= target)


within = {f: {R: accuracy_within(cv, R, chance) for R in nats_budgets} for f, cv in curves.items()}
budget_table = pd.DataFrame({f: {**{f"≤ {R:g} nats": f"{within[f][R]:.3f}" for R in nats_budgets},
                                 "first part (nats, accuracy)": f"{cv[0]['kl_nats']:.2f}, {cv[0]['probe_accuracy']:.3f}",
                                 "nats to 90 % of the whole code's accuracy": f"{nats_to_90(cv):.1f}"}
                             for f, cv in curves.items()}).T
display(budget_table.style.set_caption(f"Linear-probe class accuracy within a budget of nats (chance {chance:.3f}); "
                                       f"{len(test)} test images, probes fitted on {len(probe_train)} training codes")
        .set_uuid("budgets"))

# %% [markdown]
# ## What the numbers say
#
# The lines below are computed from the table and the figure of this page, whatever its profile. They
# describe every family's code at the middle budget of the list above, then compare each family with the flat
# VAE, whose units ordered by KL are the baseline any ordering must beat, on the seeds they share, with a 95 %
# interval over seeds: with one seed there is no interval, and the comparison says it cannot tell.

# %%
R = nats_budgets[len(nats_budgets) // 2]
for f in families:  # in the table's order
    print(ch08.family_line(f, *FAMILIES[f][:2], curves[f], within[f][R], R, nats_to_90(curves[f])))
early = {f: [accuracy_within(curve(r, n_parts[f]), R, chance) for r in results[f].runs] for f in families}
if "vae" in families:
    print("", *ch08.against_baseline(early, "vae", R), sep="\n")
print(ch08.collapse_line(curves))

# %% [markdown]
# How to read these lines against the chapters that introduced each family. The **progressive VAEs**
# ({doc}`chapter 02 <02_progressive>`) were built so that a prefix of groups decodes on its own; whether the
# first groups carry the *class* rather than only the brightest strokes is what their line says. **Conv-DRAW**
# ({doc}`chapter 03 <03_convdraw>`) is meant to spend its first iterations on the global shape ("conceptual
# compression"); its first part is a whole iteration, so its first point sits at a larger rate than a single unit. The
# **hierarchies** ({doc}`chapter 04 <04_hierarchical>`) are read top layer first; a top layer that collapsed to
# its prior costs almost no nats and tells nothing, and the line shows whether the class sits at the top or
# only in the layer nearest the image. The **PixelVAE** ({doc}`chapter 06 <06_pixelvae>`) leaves local detail
# to its autoregressive decoder, so its latent should spend its few nats on global content. The
# **D-VAE-ST** ({doc}`chapter 05 <05_discrete>`) puts a class first by construction: its first part can cost at
# most $\log 10$ nats; compare its probe accuracy there with the cluster accuracy of the table.

# %% [markdown]
# ### Likelihood against order
#
# Does ordering cost likelihood? The last lines set each family's NLL beside its class accuracy within the
# middle budget: a family in the upper left of this comparison (a good NLL *and* an early class) would show that
# the two goals do not conflict at this budget.

# %%
fig, ax = plots.plt.subplots(figsize=(6.5, 4.5))
for f in families:
    ax.scatter(nll[f], within[f][R], color=plots.model_color(f), s=40)
    ax.annotate(f, (nll[f], within[f][R]), fontsize="small", xytext=(4, 3), textcoords="offset points")
ax.axhline(chance, ls="--", color="grey", lw=1)
ax.set_xlabel(f"test NLL, K={iw_samples} (nats; lower is better)")
ax.set_ylabel(f"probe accuracy within {R:g} nats")
ax.set_title("likelihood against an early class")
run.savefig(fig, "nll_against_order")
print(ch08.correlation_line(nll, {f: within[f][R] for f in families}, R))

# %% [markdown]
# *Figure: each family's test NLL (x) against the class accuracy its code reaches within the middle budget of
# nats (y); the grey dashed line is the chance level.*
#
# ## Naming of the recorded metrics
#
# Every number of this page is in the record under `<family>/mnist/<metric>`: `test_elbo_nats`,
# `test_nll_nats` (with $K$ = `iw_samples`), `test_recon_nats`, `test_kl_nats`, `test_bits_per_dim`,
# `kl_active_units` (`cluster_accuracy` for `dvae_st`), `train_s_per_epoch`, and for every prefix $g$ of the code
# (1-based, coarse first) `prefix_kl_nats@g` (its rate $R_g$), `prefix_recon_nats@g` (its distortion $D_g$)
# and `probe_accuracy@g` (the linear probe's test accuracy); with several seeds also `_std` and `_worst`.
# The figure's points are therefore the pairs (`prefix_kl_nats@g`, `probe_accuracy@g`) of the record.

# %%
record = run.finish()
