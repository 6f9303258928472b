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
# comparison is between models trained on the same images for the same number of optimizer steps and scored
# on the same test images.

# %% tags=["parameters"]
profile = "default"  # the parameter profile this run was executed with
seed = 0  # base seed: run i of n_seeds uses seed + i
n_seeds = 3  # independent training runs per family (mean ± std and the worst seed reported when > 1)
train_size = 7000  # training images (0 means all 50000)
test_size = 500  # first test images, one fixed binarization, used by every evaluation (0 means all 10000)
probe_train_size = 5000  # training images whose codes fit the linear probes (0 means all 50000)
batch_size = 32  # 438 steps per family (7,000 images, 2 epochs): the CPU time of 110 steps of 128 (gpu, full: 128)
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
multiple_hidden = [64]  # Multiple's G small VAEs each (with progressive_hidden they would total 4.0 M parameters)
iterations = 6  # Conv-DRAW (chapter 03): T
convdraw_hidden = 33  # chapter 03 uses 16 and 16 (52 k parameters); 33 and 33 put it in the band (206 k)
convdraw_latent_channels = 2
convdraw_read_channels = 33
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
decode_draws = 3  # draws of the sampled code per test image in the headline measure
pixel_images = 0  # test images whose decoded image is drawn pixel by pixel (PixelVAE; 0: its accuracy not measured)
classifier_train_size = 0  # training images of the book's MNIST classifier (0 means all 50000)
summary_rates = [1.0, 2.0, 5.0, 10.0]  # nats at which the accuracy-rate curve is read and up to which its area is taken
target_accuracies = [0.5, 0.8]  # the rate at which each family's decoded images reach these accuracies
retrain = False  # ignore cached checkpoints and train again

# %%
import numpy as np
import pandas as pd
import torch

import c2f
from c2f import data, plots
from c2f.evaluate import cluster_accuracy, cluster_assignments, describe, evaluate
from c2f.experiment import Trial, mnist_classifier, parameter_count, run_trials, seed_list
from c2f.findings import ch08
from c2f.models.factory import synthesis_model
from c2f.stats import ranking
from c2f.synthesis import (FAMILIES, accuracy_area, accuracy_at, decoded_measures, fano_accuracy_bound, fano_excess,
                           prefix_measures, probe, rate_to_accuracy, shared_budget)
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
# * **Budget.** The same number of optimizer steps for every family, with the same batch size, Adam learning
#   rate, KL warm-up (the same fraction of training) and gradient clipping. Multiple, which trains its $G$
#   small VAEs one after another, shares that budget among its stages: each stage takes one pass over the
#   first $N \cdot E / G$ training images ($N$ images, $E$ epochs), so it sees fewer distinct images than the
#   others. The measured training time is part of the table, because a step costs very different amounts of
#   compute in different families.
# * **Seeds.** `n_seeds` seeds per family; with several, every cell is mean ± std and the worst seed.
#
# Each family keeps the architecture of its chapter's CPU `default` profile, except Multiple, whose $G$ small
# VAEs are narrower (`multiple_hidden`) so that together they stay in the band of the others, and Conv-DRAW,
# whose chapter-03 size (52 k parameters) lies far below the others: its recurrent cells and its read are
# wider here (33 channels instead of 16). The sizes are stated below and kept within a band of 0.2–2 M
# parameters; the cell names any family outside it, and a difference that involves such a family may be one of
# size.

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
budget = {f: shared_budget(train_cfg, train, int(getattr(synthesis_model(f, run.params), "num_stages", 1)))
          for f in families}  # a stage-wise model's stages share the steps
trials = [Trial(f, lambda f=f: synthesis_model(f, run.params).to(device), *budget[f]) for f in families]
n_params = {f: parameter_count(synthesis_model(f, run.params)) for f in families}
band = (200_000, 2_000_000)
print(", ".join(f"{f} {n:,}" for f, n in n_params.items()) + " parameters; outside the band "
      f"{band[0]:,}–{band[1]:,}: " + (", ".join(f for f, n in n_params.items() if not band[0] <= n <= band[1]) or "none"))
print(f"budget of every family, per seed: {len(train):,} training images, {epochs} epochs of batches of "
      f"{batch_size} = {epochs * -(-len(train) // batch_size)} optimizer steps (stage-wise models: shared by their stages); "
      f"scored on {len(test)} test images with K = {iw_samples}, probes fitted on {len(probe_train):,} training "
      f"codes; {n_seeds} seed(s)")


# %% [markdown]
# ## One measure of coarse-to-fine: the class of an image decoded from a sample of the code's first part
#
# Order a model's code into parts $c_1, c_2, \dots$ from coarse to fine, the way the model defines itself
# (the table above). For every prefix $c_{\le g}$ ($g = 0$: no code at all) and every test image $x$:
#
# * **one rule for every family**: draw the prefix from the posterior, $c_{\le g} \sim q(c_{\le g} \mid x)$
#   (each part given the ones before it where the posterior is sequential), and the rest of the code from the
#   prior given the prefix, $c_{>g} \sim p(c_{>g} \mid c_{\le g})$ (the conditional prior of Conv-DRAW and
#   the hierarchies; $\mathcal N(0, I)$ for independent units and groups; the uniform class of the D-VAE-ST),
#   and decode the image (the decoder's mean);
# * its **class accuracy**: how often the book's MNIST classifier (`c2f.models.classifier`, trained once on the
#   grey-level training images and cached) assigns the decoded image to the class of $x$, averaged over
#   `decode_draws` draws;
# * its **distortion** $-\mathbb E \log p(x \mid c)$ under the same draws, and its **rate** $R_g$, the test KL
#   of the prefix's parts (the KL that enters the ELBO; $R_G$ is the model's whole KL).
#
# The decoded image depends on $x$ only through the sampled prefix, so the class information it carries is at
# most $I(x; c_{\le g}) \le R_g$, and by Fano's inequality (ten classes, uniform) its accuracy is at most the
# $a$ with $h(1 - a) + (1 - a) \log 9 = \log 10 - R_g$: 0.1 at no rate, 1 from $\log 10 \approx 2.3$ nats on.
# The page checks every point against that bound. The measure reads neither the size of the part nor its
# encoder: only what the model's own decoder makes of the nats it paid for. The PixelVAE's decoder draws an
# image pixel by pixel (784 decoder passes per image); it is measured on `pixel_images` test images (none in
# the CPU `default` profile, where that would cost several minutes per seed).

# %%
classifier, classifier_accuracy = mnist_classifier(device, run=run, retrain=retrain, train_size=classifier_train_size)
print(f"the book's MNIST classifier: {classifier_accuracy:.4f} on the 10,000 grey-level test images")


def score(model, s):  # every seed's model on the same binarization and importance samples (seed 0)
    m = evaluate(model, test, iw_samples=iw_samples, seed=0, iw_batch=iw_batch, per_image=True)
    kl = m.pop("kl_per_dim")
    out, order = {f"mnist/test_{k}": v for k, v in m.items()}, model.code_order(kl)
    if order.clusters:  # a clustering model: its clusters matched to the classes (Hungarian method)
        out["mnist/cluster_accuracy"] = cluster_accuracy(*cluster_assignments(model, test), 10)
    decoded = decoded_measures(model, order, kl, test, classifier, draws=decode_draws, seed=s, pixel_images=pixel_images)
    for g, c in enumerate(decoded):
        out.update({f"mnist/decoded_kl_nats@{g}": c["kl_nats"], f"mnist/decoded_recon_nats@{g}": c["recon_nats"]})
        if c["decoded_accuracy"] is not None:
            out[f"mnist/decoded_accuracy@{g}"] = c["decoded_accuracy"]
    if decoded[0]["decoded_accuracy"] is not None:
        for R in summary_rates:
            out[f"mnist/decoded_class_accuracy@{R:g}"] = accuracy_at(decoded, R)
            out[f"mnist/decoded_accuracy_area@{R:g}"] = accuracy_area(decoded, R)
    for g, c in enumerate(prefix_measures(model, order, kl, test, probe_train, seed=s), 1):  # the second view
        out.update({f"mnist/prefix_kl_nats@{g}": c["kl_nats"], f"mnist/probe_accuracy@{g}": c["probe_accuracy"],
                    f"mnist/probe_features@{g}": c["features"], f"mnist/control_accuracy@{g}": c["control_accuracy"]})
    return {**out, "labels": order.labels, "decoded": decoded}


# %%
results = run_trials(trials, train, seeds=seeds, score=score, run=run, key="08", retrain=retrain)
wall = {f: r.wall_s for f, r in results.items()}  # training (or loading from the cache) and scoring, every seed
summaries = {f: r.summary for f, r in results.items()}
secs = {f: float(np.mean(r.train_seconds)) for f, r in results.items()}  # training wall time, the whole budget
for f, r in results.items():
    run.log(f"{f}/mnist", {"train_s": secs[f], "train_and_score_wall_s": wall[f]})
    print(f"{f:9s} test ELBO {describe(r.summary, 'mnist/test_elbo_nats')}, NLL (K={iw_samples}) "
          f"{describe(r.summary, 'mnist/test_nll_nats')} nats; {secs[f]:.1f} s of training; "
          f"{wall[f]:.0f} s to train (or load) and score {n_seeds} seed(s) in this run")

# %% [markdown]
# ## One table
#
# Every family on the same test images with the same $K$. **Decoded, whole code** is the headline measure at
# the whole code ($g = G$); **class accuracy (probe)** a linear probe on the whole code's posterior means and,
# for the D-VAE-ST (a clustering model), **cluster accuracy** its clusters matched one-to-one to the classes;
# its NLL sums the class out exactly and importance-samples the transformation. The training time is the wall
# time of the whole budget on this run's device, as measured when the model was trained.

# %%
def row(f):
    s, G = summaries[f], len(results[f].runs[0]["labels"])
    return {"chapter": FAMILIES[f][0], "parameters": f"{n_params[f]:,}",
            "test ELBO": describe(s, "mnist/test_elbo_nats"), f"NLL (K={iw_samples})": describe(s, "mnist/test_nll_nats"),
            "bits/dim": describe(s, "mnist/test_bits_per_dim", digits=3), "KL": describe(s, "mnist/test_kl_nats"),
            "decoded, whole code": describe(s, f"mnist/decoded_accuracy@{G}", digits=3)
            if f"mnist/decoded_accuracy@{G}" in s else "not measured",
            "class accuracy (probe)": describe(s, f"mnist/probe_accuracy@{G}", digits=3),
            "cluster accuracy": describe(s, "mnist/cluster_accuracy", digits=3) if "mnist/cluster_accuracy" in s else "–",
            "training s": f"{secs[f]:.1f}"}


table = pd.DataFrame({f: row(f) for f in families}).T
display(table.style.set_caption(
    f"MNIST, dynamic binarization, nats; {len(train)} training images, {epochs} epochs' steps; {len(test)} test images "
    f"(one fixed binarization); {'mean ± std (worst) over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else 'one seed'}; "
    f"{run.profile} profile").set_uuid("synthesis"))
display(ranking({f: results[f] for f in families}, "mnist/test_nll_nats", digits=2).style.set_caption(
    f"families by test NLL (K={iw_samples}), best first, each against the best, with 95 % intervals over the "
    f"{len(test)} test images" + (f" and {n_seeds} seeds" if n_seeds > 1 else " (one seed)")).set_uuid("nll_ranking"))

# %% [markdown]
# At the CPU `default` budget (a few epochs' steps on part of the training images) no family is near
# convergence, and the likelihoods are far from those of the papers and of the chapters' `full` profiles;
# what this table compares is the families at one equal, small budget.
#
# ## Coarse to fine, family by family
#
# Each point is one prefix of one family's code (mean over seeds), the first point ($g = 0$, no code) at rate
# 0. Left: the distortion of the decoded images, with the no-latent line (every pixel an independent
# Bernoulli at its mean over the training images). Right: their class accuracy, with the no-latent line (the
# most frequent class), the classifier on the true test images, and Fano's bound.

# %%
def points(f, key):
    s, n = summaries[f], len(results[f].runs[0]["decoded"])
    return [s[f"mnist/decoded_kl_nats@{g}"] for g in range(n)], [s[f"mnist/{key}@{g}"] for g in range(n)]


measured = [f for f in families if "mnist/decoded_accuracy@0" in summaries[f]]
chance = probe(torch.zeros(len(probe_train), 0), probe_train.y, torch.zeros(len(test), 0), test.y)
pixel_mean = train.x.mean(0).clamp(1e-4, 1 - 1e-4)
fixed = test.fixed_binarization(0).x
no_latent_nats = float(-torch.distributions.Bernoulli(pixel_mean).log_prob(fixed).sum((1, 2, 3)).mean())
on_true = float((classifier.predict(test.x) == test.y).float().mean())  # the grey-level test images

# %%
fig, axes = plots.plt.subplots(1, 2, figsize=(13, 4.5))
dashed = [f for f in families if f in ("convdraw", "hvae", "lvae", "vlae")]  # told apart from vae, quotient
plots.rate_curves({f: points(f, "decoded_recon_nats") for f in families}, "rate of the prefix: KL (nats)",
                  "distortion −log p(x | sampled code) (nats)", ax=axes[0], dashed=dashed)
plots.rate_curves({f: points(f, "decoded_accuracy") for f in measured}, "rate of the prefix: KL (nats)",
                  "class accuracy of the decoded image", ax=axes[1], dashed=dashed)
for ax in axes:
    [line.set(marker="o", markersize=3.5) for line in ax.get_lines()]  # the family curves: every point a prefix
top = max(max(points(f, "decoded_kl_nats")[1]) for f in families)
rates = np.linspace(0, max(top, 3.0), 300)
axes[1].plot(rates, [fano_accuracy_bound(r) for r in rates], color="black", lw=1, label="Fano bound")
axes[1].axhline(on_true, ls=":", color="black", lw=1, label="classifier, true image")
axes[1].axhline(chance, ls="--", color="grey", lw=1, label="no latent")
axes[0].axhline(no_latent_nats, ls="--", color="grey", lw=1)
for ax in axes:
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
axes[0].get_legend().remove()
axes[1].legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
fig.suptitle(f"The class of an image decoded from a sample of each code's first part: {len(test)} test images")
run.savefig(fig, "coarse_to_fine")

# %% [markdown]
# *Figure: left, the distortion of images decoded from a sampled prefix (the rest from the prior) against the
# prefix's rate; right, the classifier's accuracy on those images, under Fano's bound (black). The x-axis is
# linear below 1 nat and logarithmic above; mean over seeds; Conv-DRAW and the hierarchies dashed.*
#
# Every point of every seed against the bound of its rate (the bound holds for the population; each point
# is measured on a finite number of images, so it may scatter up to three binomial standard errors above):

# %%
fano = [(f, c["kl_nats"], c["decoded_accuracy"], fano_excess(c["decoded_accuracy"], c["kl_nats"], c["images"] * decode_draws))
        for f in measured for r in results[f].runs for c in r["decoded"]]
print(ch08.fano_line(fano))
assert all(p[3] <= 0 for p in fano), "a point of the headline measure exceeds the Fano bound of its rate"

# %% [markdown]
# ## Summaries that are not step functions
#
# Each seed's curve is interpolated linearly in $\log(1 + R)$ between its points (beyond the whole code's rate
# it keeps the whole code's accuracy). Read at fixed rates, averaged over rates up to $R$ (the area under the
# curve, as a mean accuracy), and inverted: the rate at which the decoded images reach a given accuracy.

# %%
def per_seed(f, fn):
    return [fn(r["decoded"]) for r in results[f].runs]


at = {f: {R: per_seed(f, lambda c, R=R: accuracy_at(c, R)) for R in summary_rates} for f in measured}
area = {f: {R: per_seed(f, lambda c, R=R: accuracy_area(c, R)) for R in summary_rates} for f in measured}
reach = {f: {a: per_seed(f, lambda c, a=a: rate_to_accuracy(c, a)) for a in target_accuracies} for f in measured}
for f in measured:
    for a, v in reach[f].items():
        if None not in v:  # a rate is recorded only where every seed reaches the accuracy
            run.log(f"{f}/mnist", {f"rate_to_accuracy@{a:g}": float(np.mean(v)), **({
                f"rate_to_accuracy@{a:g}_std": float(np.std(v, ddof=1)),
                f"rate_to_accuracy@{a:g}_worst": float(max(v))} if len(v) > 1 else {})})
cell = lambda v: f"{np.mean(v):.3f}" + (f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else "")  # noqa: E731
summary_table = pd.DataFrame({f: {**{f"at {R:g} nats": cell(at[f][R]) for R in summary_rates},
                                  **{f"area to {R:g}": cell(area[f][R]) for R in summary_rates},
                                  **{f"nats to {a:g}": cell(v) if None not in v else f"not reached ({v.count(None)} seeds)"
                                     for a, v in reach[f].items()}} for f in measured}).T
display(summary_table.style.set_caption(f"decoded-image class accuracy, mean ± std over {n_seeds} seed(s); "
                                        f"{len(test)} test images × {decode_draws} draws").set_uuid("summaries"))

# %% [markdown]
# ## What the numbers say
#
# The lines below are computed from this page's numbers, whatever its profile: each family on the common
# axes, then every pair of families compared on the area up to the middle rate and at the largest rate through
# `c2f.stats.compare` (paired over seeds, 95 % interval): the differences whose interval excludes 0 one by
# one, then the pairs whose interval contains 0, named as "no difference at this budget". Last, whether the
# progressive models' one-unit groups and the flat VAE's units, taken by KL, lie on one curve.

# %%
mid, last = summary_rates[len(summary_rates) // 2], summary_rates[-1]
for f in measured:
    print(ch08.family_line(f, *FAMILIES[f][:2], at[f], reach[f]))
print("", *ch08.differences({f: area[f][mid] for f in measured}, f"area to {mid:g} nats"), sep="\n")
print("", *ch08.differences({f: at[f][last] for f in measured}, f"accuracy at {last:g} nats"), sep="\n")
whole = {f: min(r["decoded"][-1]["kl_nats"] for r in results[f].runs) for f in measured}
print("\n" + ch08.one_curve_line(at, "vae", ["single", "rnn", "quotient", "multiple"], whole))

# %% [markdown]
# ## A second view: a linear probe on samples of the code
#
# A multinomial logistic regression (scikit-learn {cite}`pedregosa2011sklearn`) {cite}`alain2017probes` on
# one *sample* of the prefix's posterior per image (a class as its one-hot vector), fitted on the codes of
# `probe_train_size` training images and scored on the test images. A sample carries at most the prefix's
# rate about the image, so this probe too is bounded by the rate, unlike a probe on posterior means (which
# reads the encoder). It still depends on the part's size, which stands beside it: a part of 98 features
# (Conv-DRAW's first iteration) gives the probe more to fit than one unit. The **control** is the same probe
# on a random Gaussian projection of the *whole* code to as many features as the prefix: what a code of that
# size gives without the model's order.

# %%
def probe_row(f, g):
    s = summaries[f]
    return {"features": f"{s[f'mnist/probe_features@{g}']:.0f}", "rate (nats)": describe(s, f"mnist/prefix_kl_nats@{g}"),
            "probe on samples": describe(s, f"mnist/probe_accuracy@{g}", digits=3),
            "control (random projection)": describe(s, f"mnist/control_accuracy@{g}", digits=3),
            "decoded": describe(s, f"mnist/decoded_accuracy@{g}", digits=3) if f in measured else "not measured"}


probe_table = pd.DataFrame({(f, part): probe_row(f, g) for f in families
                            for part, g in (("first part", 1), ("whole code", len(results[f].runs[0]["labels"])))}).T
display(probe_table.style.set_caption(f"linear probe on a sample of the first part and of the whole code, beside "
                                      f"its size, the dimension-matched control and the decoded measure "
                                      f"(no latent: {chance:.3f})").set_uuid("probe"))

# %% [markdown]
# ## Naming of the recorded metrics
#
# Every number of this page is in the record under `<family>/mnist/<metric>`: `test_elbo_nats`,
# `test_nll_nats` (with $K$ = `iw_samples`), `test_recon_nats`, `test_kl_nats`, `test_bits_per_dim`,
# `cluster_accuracy` (`dvae_st`), `train_s`; for every prefix $g = 0..G$ of the headline measure
# `decoded_kl_nats@g` (its rate), `decoded_recon_nats@g` (its distortion) and `decoded_accuracy@g`; at the
# rates $R$ of `summary_rates` `decoded_class_accuracy@R` (interpolated) and `decoded_accuracy_area@R`;
# `rate_to_accuracy@a` (where every seed reaches `a`); and the probe's `prefix_kl_nats@g`, `probe_features@g`,
# `probe_accuracy@g` (on samples) and `control_accuracy@g` ($g = 1..G$). With several seeds also `_std` and
# `_worst`.

# %%
record = run.finish()
