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
# # Hierarchical and ladder VAEs
#
# A stack of latent layers looks like the obvious architecture for a coarse-to-fine description: the top
# layer could hold the digit's class, the next its slant and stroke width, the lowest the small offsets and
# texture. Whether a hierarchy actually *learns* such a split is an empirical question, and there are
# arguments that it does not. Zhao, Song and Ermon {cite}`zhao2017ladder` argue that (i) if the decoder is
# expressive and the ELBO is optimised perfectly, the lowest latent layer suffices and the upper layers are
# redundant, and (ii) a Markov hierarchy of simple (unimodal Gaussian) conditionals cannot represent a
# meaningful hierarchy at all. The Ladder VAE {cite}`sonderby2016ladder` was proposed as a way to make deep
# hierarchies train, with KL warm-up and batch normalisation described as crucial. This chapter implements
# six models with latent layers, trains them with comparable parameter budgets on dynamically binarized
# MNIST, and measures what each layer carries: its KL, its active units, and what changes in the image when
# only that layer is redrawn.
#
# Throughout, layer $l = 1$ is the one nearest the image and $l = L$ the top.

# %% tags=["parameters"]
profile = "default"  # the parameter profile this run was executed with
seed = 0
train_size = 10000  # training images (0 means all 50000)
test_size = 1000  # first test and validation images used by every evaluation (0 means all 10000)
batch_size = 128
lr = 1e-3
latent_dims = [32, 16, 8]  # units of z_1 (nearest the image) to z_L
hidden = [256, 128, 64]  # width of the deterministic block of each layer
block_layers = 1  # dense layers per deterministic block
epochs = 12
warmup_epochs = 4.0  # linear KL warm-up from 0 to 1 over this many epochs
iw_samples = 100  # importance samples K for the test NLL
models = ["hvae", "markov_hvae", "lvae", "vlae", "svae", "msvae"]
ablations = ["no_warmup", "no_batch_norm", "neither"]  # LVAE trained without its recipe ([] to skip)
msvae_channels = 8  # MSVAE stage 2: channels of the residual blocks
msvae_res_blocks = 1
msvae_l1_weight = 1.0
fashion_models = ["lvae", "vlae"]  # trained on FashionMNIST for traversals ([] to skip)
fashion_epochs = 10
n_show = 10  # test images in the image figures
retrain = False  # ignore cached checkpoints and train again

# %%
import pandas as pd
import torch

import c2f
from c2f import data, plots
from c2f.evaluate import evaluate, layer_report
from c2f.models import (MSVAE, SVAE, VLAE, HierarchicalConfig, MSVAEConfig, SVAEConfig, VLAEConfig,
                        make_hierarchical)
from c2f.models.layered import resample_layer, traverse_layer
from c2f.train import TrainConfig, train_or_load

run = c2f.Run.start("04_hierarchical", globals())
device = run.device
L = len(latent_dims)
known = {"hvae", "markov_hvae", "lvae", "vlae", "svae", "msvae"}
if set(models) - known or set(fashion_models) - known:
    raise ValueError(f"unknown model(s) {sorted((set(models) | set(fashion_models)) - known)}; choose from {sorted(known)}")
if set(ablations) - {"no_warmup", "no_batch_norm", "neither"}:
    raise ValueError(f"unknown ablation(s) {ablations}; choose from no_warmup, no_batch_norm, neither")

# %% [markdown]
# ## Data
#
# The benchmark is MNIST with **dynamic binarization** (every pixel re-drawn as a Bernoulli sample of its
# grey level each time an image is used) and a Bernoulli likelihood, as in chapter 01; evaluation uses one
# fixed binarization of the first `test_size` test images. FashionMNIST, binarized the same way, is used
# for the traversals, where shape and texture are easier to tell apart than on digits.

# %%
def splits(name):
    sets = [data.load(name, split, device=device, binarize="dynamic") for split in ("train", "valid", "test")]
    return sets[0].subset(train_size), sets[1].subset(test_size), sets[2].subset(test_size)


train, valid, test = splits("mnist")
x_show = test.fixed_binarization(seed).x[:n_show]
print(f"MNIST: {len(train)} training, {len(valid)} validation and {len(test)} test images")

# %% [markdown]
# ## Six models with latent layers
#
# **HVAE.** The generative model is a top-down chain in which each layer may depend on *all* layers above
# it, and inference runs bottom-up:
#
# $$
# p(x, z_{1:L}) = p(z_L) \prod_{l<L} p(z_l \mid z_{>l})\, p(x \mid z_{1:L}), \qquad
# q(z_{1:L} \mid x) = q(z_1 \mid x) \prod_{l>1} q(z_l \mid z_{<l}, x).
# $$
#
# A deterministic top-down state carries the layers above to every prior and to the decoder.
#
# **Markov HVAE.** The special case $p(z_l \mid z_{l+1})$, $p(x \mid z_1)$, $q(z_l \mid z_{l-1})$: the image
# depends on the upper layers *only through* $z_1$.
#
# **Ladder VAE (LVAE).** The Markov generative model, with inference in two passes. A deterministic
# bottom-up pass $d_l = f_l(d_{l-1})$, $d_0 = x$, gives at each layer an estimate $(\hat\mu_l,
# \hat\sigma_l^2)$; then a top-down pass draws $z_L \sim \mathcal N(\hat\mu_L, \hat\sigma_L^2)$ and, for
# $l < L$, combines the estimate with the top-down prior $p(z_l \mid z_{l+1}) = \mathcal N(\mu_{p,l},
# \sigma_{p,l}^2)$ by precision weighting,
#
# $$
# \sigma_{q,l}^{2} = \big(\hat\sigma_l^{-2} + \sigma_{p,l}^{-2}\big)^{-1}, \qquad
# \mu_{q,l} = \sigma_{q,l}^2 \big(\hat\mu_l \hat\sigma_l^{-2} + \mu_{p,l}\sigma_{p,l}^{-2}\big).
# $$
#
# The prior's network is shared by inference and generation, and every KL term,
# $\mathrm{KL}(q(z_l \mid \cdot) \,\|\, p(z_l \mid z_{l+1}))$, is between two Gaussians and taken in closed
# form given the sample of the layer above. For the HVAE and the Markov HVAE, $z_l$ is drawn *before* the
# layers its prior depends on, so their lower layers' KL is the single-sample $\log q - \log p$.
#
# **VLAE** (variational *ladder* autoencoder) {cite}`zhao2017ladder`. All layers are independent a priori,
# $z_l \sim \mathcal N(0, I)$, and the hierarchy comes from depth: one generator injects $z_L$ at its top and
# each lower $z_l$ one block further down, $\tilde z_L = f_L(z_L)$, $\tilde z_l = f_l([\tilde z_{l+1},
# z_l])$, $x \sim p(x \mid f_0(\tilde z_1))$; $q(z_l \mid x)$ reads the encoder's feature at the matching
# depth.
#
# **SVAE** (sequential VAE) {cite}`zhao2017sequential`. A chain of images $\hat x_1, \dots, \hat x_T$, step
# $t$ made from its own latent and the previous image, $\hat x_t = \sigma(f_t([z_t, \hat x_{t-1}]))$,
# trained with a pixel loss at *every* step, $\sum_t -\log p(x \mid \hat x_t) + \sum_t \mathrm{KL}(q(z_t
# \mid x) \,\|\, \mathcal N(0, I))$. Here the steps play the role of the layers ($T = L$, same sizes). The
# ELBO and NLL we report are those of the chain's **final** image as the model of $x$ (all $T$ latents);
# the intermediate pixel losses are a training device and are not part of that bound.
#
# **MSVAE** (multi-stage VAE) {cite}`cai2017multistage`. One latent $z$ (as many units as all layers of the
# others together); stage 1 decodes a coarse image, stage 2 (residual convolution blocks) sharpens it seeing
# only the coarse image, and both are trained jointly. The paper's stage 1 has an $\ell_2$ loss; on binary
# data we give it a **Bernoulli likelihood**, so that $z \to$ stage 1 is a likelihood model and its ELBO and
# NLL go in the same table. Stage 2 keeps the paper's $\ell_1$ loss; it defines no density, so we report it
# separately as the $\ell_1$ error of each stage.
#
# All models use ELU activations, batch normalisation in every deterministic block and a linear KL warm-up
# over the first `warmup_epochs` epochs: the LVAE recipe, given to every model so that the comparison is
# about the architecture. The LVAE is also trained without warm-up, without batch norm, and without either.

# %%
def build(kind, batch_norm=True, image_shape=(1, 28, 28)):
    common = dict(activation="elu", batch_norm=batch_norm, image_shape=image_shape)
    if kind in ("hvae", "markov_hvae", "lvae"):
        return make_hierarchical(kind, HierarchicalConfig(latent_dims=tuple(latent_dims), hidden=tuple(hidden),
                                                          block_layers=block_layers, **common))
    if kind == "vlae":
        return VLAE(VLAEConfig(latent_dims=tuple(latent_dims), hidden=tuple(hidden), block_layers=block_layers,
                               **common))
    if kind == "svae":
        return SVAE(SVAEConfig(latent_dims=tuple(latent_dims), hidden=tuple(hidden[:2]), **common))
    return MSVAE(MSVAEConfig(latent_dim=sum(latent_dims), hidden=tuple(hidden[:2]), channels=msvae_channels,
                             res_blocks=msvae_res_blocks, l1_weight=msvae_l1_weight, **common))


def train_model(kind, train, valid, *, tag="", batch_norm=True, warmup=warmup_epochs, n_epochs=epochs):
    torch.manual_seed(seed)
    model = build(kind, batch_norm).to(device)
    cfg = TrainConfig(epochs=n_epochs, batch_size=batch_size, lr=lr, kl_warmup_epochs=warmup, seed=seed)
    history = train_or_load(model, train, cfg, name=f"04-{tag}{kind}-seed{seed}", valid=valid, retrain=retrain)
    return model, history


trained, histories, reports = {}, {}, {}
for kind in models:
    trained[kind], histories[kind] = train_model(kind, train, valid)
    reports[kind] = r = layer_report(trained[kind], test, iw_samples=iw_samples, seed=seed)
    run.log(kind, {"test_elbo_nats": r["elbo_nats"], "test_nll_nats": r["nll_nats"],
                   "test_kl_nats": r["kl_nats"], "test_recon_nats": r["recon_nats"],
                   **{k: v for k, v in r.items() if k.startswith(("kl_layer", "active_units"))}})
    units = " ".join(f"{r[f'active_units_layer_{l}']}/{d}" for l, d in enumerate(trained[kind].layer_sizes, 1))
    print(f"{kind:12s} {sum(p.numel() for p in trained[kind].parameters()):>9,} parameters; test ELBO "
          f"{r['elbo_nats']:8.2f}, NLL (K={iw_samples}) {r['nll_nats']:7.2f} nats; active units per layer "
          f"(1..{len(trained[kind].layer_sizes)}): {units}")

# %% [markdown]
# ## Results
#
# Test ELBO (one posterior sample) and importance-weighted NLL with $K$ = `iw_samples` samples, both in nats
# on the fixed binarization of the test images, then the KL and the active units of each layer. A unit is
# *active* when the variance over test images of its posterior mean exceeds 0.01 {cite}`burda2016iwae`
# (for the top-down models, the means along the posterior mean path).

# %%
def results_table(names, reports, caption, uuid):
    rows = {}
    for name in names:
        r = reports[name]
        row = {"ELBO": f"{r['elbo_nats']:.2f}"}
        if "nll_nats" in r:
            row[f"NLL (K={iw_samples})"] = f"{r['nll_nats']:.2f}"
        row.update({f"KL z{l}": f"{r[f'kl_layer_{l}']:.2f}" for l in range(1, L + 1) if f"kl_layer_{l}" in r})
        model = trained.get(name) or ablated[name]
        row.update({f"AU z{l}": f"{r[f'active_units_layer_{l}']}/{d}" for l, d in enumerate(model.layer_sizes, 1)})
        row["parameters"] = f"{sum(p.numel() for p in model.parameters()):,}"
        rows[name] = row
    display(pd.DataFrame(rows).T.fillna("–").style.set_caption(caption).set_uuid(uuid))  # fixed id: stable HTML


ablated = {}
results_table(models, reports, f"MNIST, dynamic binarization, Bernoulli likelihood, nats; {len(test)} test images; "
              f"{len(train)} training images, {epochs} epochs; {run.profile} profile, one seed. MSVAE: stage 1; "
              "SVAE: final image; the MSVAE has one layer.", "main")

# %% [markdown]
# ### The KL of each layer during training
#
# The training loop logs the KL of each layer on every minibatch (running means below, against epochs).
# During warm-up the KL weight rises from 0 to 1 and the KL first grows, then the weight reaches 1 and
# layers that do not pay for themselves are pushed back towards their prior.

# %%
layer_keys = tuple(f"kl_{l}" for l in range(1, L + 1))
labels = {f"kl_{l}": f"KL of layer {l} (nats)" for l in range(1, L + 1)}
fig = plots.training_curves({n: h for n, h in histories.items() if n != "msvae"}, keys=layer_keys, labels=labels)
run.savefig(fig, "kl_per_layer_training")

# %% [markdown]
# Active units during training, counted on each training minibatch (the variance of the posterior means
# over the 128 images of the batch, threshold 0.01; a noisier estimate than the test-set count of the table).

# %%
au_keys = tuple(f"au_{l}" for l in range(1, L + 1))
fig = plots.training_curves({n: h for n, h in histories.items() if n != "msvae"}, keys=au_keys,
                            labels={f"au_{l}": f"active units, layer {l} (minibatch)" for l in range(1, L + 1)})
run.savefig(fig, "active_units_training")

# %% [markdown]
# ## Why warm-up and batch norm? The LVAE without them
#
# The same LVAE, same seed and epochs, trained (a) with the full KL weight from the first step, (b) without
# batch normalisation, (c) without either. The evaluation is the same as above, without the NLL.

# %%
variants = {"no_warmup": dict(warmup=0.0), "no_batch_norm": dict(batch_norm=False),
            "neither": dict(warmup=0.0, batch_norm=False)}
for name in ablations:
    key = f"lvae_{name}"
    ablated[key], histories[key] = train_model("lvae", train, valid, tag=f"{name}-", **variants[name])
    reports[key] = r = layer_report(ablated[key], test, seed=seed)
    run.log(key, {"test_elbo_nats": r["elbo_nats"], "test_kl_nats": r["kl_nats"],
                  **{k: v for k, v in r.items() if k.startswith(("kl_layer", "active_units"))}})
if ablations:
    names = ["lvae"] * ("lvae" in reports) + [f"lvae_{a}" for a in ablations]
    results_table(names, reports, f"LVAE with and without KL warm-up and batch norm (MNIST, {epochs} epochs, "
                  "one seed)", "ablation")
    fig = plots.training_curves({n: histories[n] for n in names}, keys=layer_keys, labels=labels)
    run.savefig(fig, "lvae_ablation_kl")

# %% [markdown]
# ### KL per layer at the end of training
#
# The same numbers as in the tables, as a profile over the layers. A layer at 0 is collapsed onto its prior.

# %%
kl_profile = {n: [reports[n][f"kl_layer_{l}"] for l in range(1, L + 1)] for n in reports if n != "msvae"}
fig = plots.lines_by_group(kl_profile, "test KL (nats)", xlabel="latent layer l (1 nearest the image)",
                           title="KL of each latent layer (MNIST test images)")
run.savefig(fig, "kl_per_layer")

# %% [markdown]
# ## What does each layer control?
#
# Each grid shows test images, their reconstructions along the posterior mean path, and then, row by row,
# the same images with **one layer redrawn** from its prior and the others kept. For the VLAE and the SVAE
# the layers are independent a priori and the others keep their posterior means. For the top-down models
# (HVAE, Markov HVAE, LVAE) the layers *above* keep their posterior means, the redrawn layer is sampled from
# its conditional prior $p(z_l \mid z_{>l})$, and the layers *below* follow at their conditional prior
# means: keeping a lower layer fixed while its parent changes would not be a draw from the model, and in the
# Markov models it would change nothing at all, since $x$ sees the upper layers only through $z_1$. What
# varies along a row is what that layer encodes; what stays put is encoded elsewhere.

# %%
torch.manual_seed(seed)
for kind in [k for k in models if k != "msvae"]:
    m = trained[kind]
    rows = [x_show, m.reconstruct(x_show)] + [resample_layer(m, x_show, l) for l in range(L, 0, -1)]
    fig = plots.image_rows(rows, ["data", "recon", *[f"new z{l}" for l in range(L, 0, -1)]],
                           title=f"{kind}: redraw one layer, keep the others (MNIST)")
    run.savefig(fig, f"{kind}_resample_layers")

# %% [markdown]
# The same for one image: each row redraws one layer ten times.

# %%
torch.manual_seed(seed)
one = x_show[:1].expand(n_show, -1, -1, -1)
for kind in [k for k in ("lvae", "vlae", "hvae") if k in trained]:
    rows = [resample_layer(trained[kind], one, l) for l in range(L, 0, -1)]
    fig = plots.image_rows(rows, [f"new z{l}" for l in range(L, 0, -1)], title=f"{kind}: ten draws of each layer")
    run.savefig(fig, f"{kind}_resample_one_image")

# %% [markdown]
# ## Traversals on FashionMNIST
#
# An LVAE and a VLAE trained the same way on FashionMNIST. For each layer, the unit with the largest test KL
# is swept from −2.5 to 2.5 prior standard deviations around its (conditional) prior mean, the layers above
# kept at the posterior means of one test image (and, for the VLAE, the layers below too).

# %%
if fashion_models:
    f_train, f_valid, f_test = splits("fashion_mnist")
    xf = f_test.fixed_binarization(seed).x[:n_show]
    values = torch.linspace(-2.5, 2.5, 9)
    for kind in fashion_models:
        m, _ = train_model(kind, f_train, f_valid, tag="fashion-", n_epochs=fashion_epochs)
        r = layer_report(m, f_test, seed=seed)
        run.log(f"fashion_{kind}", {"test_elbo_nats": r["elbo_nats"],
                                    **{k: v for k, v in r.items() if k.startswith(("kl_layer", "active_units"))}})
        kl_dims = torch.tensor(evaluate(m, f_test, seed=seed)["kl_per_dim"]).split(list(latent_dims))
        rows, names = [], []
        for l in range(L, 0, -1):
            unit = int(kl_dims[l - 1].argmax())
            for i in range(2):
                rows.append(traverse_layer(m, xf[i:i + 1], l, unit, values))
                names.append(f"z{l}[{unit}], image {i + 1}")
        fig = plots.image_rows(rows, names, title=f"FashionMNIST, {kind}: the top-KL unit of each layer, "
                               "−2.5 to 2.5 prior sd")
        run.savefig(fig, f"fashion_{kind}_traversals")
        torch.manual_seed(seed)
        rows = [xf, m.reconstruct(xf)] + [resample_layer(m, xf, l) for l in range(L, 0, -1)]
        fig = plots.image_rows(rows, ["data", "recon", *[f"new z{l}" for l in range(L, 0, -1)]],
                               title=f"FashionMNIST, {kind}: redraw one layer, keep the others")
        run.savefig(fig, f"fashion_{kind}_resample_layers")
        print(f"FashionMNIST {kind}: test ELBO {r['elbo_nats']:.2f} nats; KL per layer "
              + ", ".join(f"{r[f'kl_layer_{l}']:.2f}" for l in range(1, L + 1)))

# %% [markdown]
# ## The intermediate images of the SVAE and the MSVAE
#
# For the SVAE, the chain $\hat x_1, \dots, \hat x_T$ at the posterior means of test images, and for prior
# samples; for the MSVAE, the coarse stage-1 image and the sharpened stage-2 image.

# %%
torch.manual_seed(seed)
if "svae" in trained:
    for what, steps in (("test images", trained["svae"].step_images(x_show)),
                        ("prior samples", trained["svae"].step_images(n=n_show))):
        rows = ([x_show] if what == "test images" else []) + steps
        fig = plots.image_rows(rows, (["data"] if what == "test images" else [])
                               + [f"step {t}" for t in range(1, L + 1)], title=f"SVAE: the chain of images, {what}")
        run.savefig(fig, f"svae_steps_{what.split()[0]}")
if "msvae" in trained:
    ms = trained["msvae"]
    fig = plots.image_rows([x_show, *ms.stage_images(x_show), *ms.stage_images(n=n_show)],
                           ["data", "stage 1", "stage 2", "sample: 1", "sample: 2"],
                           title="MSVAE: coarse (stage 1) and sharpened (stage 2) images")
    run.savefig(fig, "msvae_stages")
    x_eval = test.fixed_binarization(seed).x
    l1 = ms.l1_errors(x_eval)
    run.log("msvae", {"test_l1_stage1": l1[0], "test_l1_stage2": l1[1]})
    print(f"MSVAE mean l1 error per test image (sum over 784 pixels): stage 1 {l1[0]:.2f}, stage 2 {l1[1]:.2f}")
if "svae" in trained:
    x_eval = test.fixed_binarization(seed).x
    steps = trained["svae"].step_images(x_eval)
    step_l1 = [(x_eval - s).abs().flatten(1).sum(-1).mean().item() for s in steps]
    run.log("svae", {f"test_l1_step_{t}": v for t, v in enumerate(step_l1, 1)})
    print("SVAE mean l1 error per test image at each step: " + ", ".join(f"{v:.2f}" for v in step_l1))

# %% [markdown]
# ## Findings
#
# The lines below are computed from this run (they change with the profile; the `smoke` profile trains for
# seconds and proves nothing). A layer counts as *used* when it has at least one active unit on the test
# images; the *share* of a layer is its fraction of the model's total KL.

# %%
for name, r in reports.items():
    total = sum(r[f"kl_layer_{l}"] for l in range(1, L + 1) if f"kl_layer_{l}" in r)
    layers = [l for l in range(1, L + 1) if f"active_units_layer_{l}" in r]
    unused = [l for l in layers if r[f"active_units_layer_{l}"] == 0]
    share = ", ".join(f"{100 * r[f'kl_layer_{l}'] / total:.0f}%" for l in layers)
    print(f"{name:22s} KL share of layers 1..{len(layers)}: {share}; "
          + (f"unused layer(s): {unused}" if unused else "every layer used"))
for name in [n for n in ("lvae", "vlae") if n in reports]:
    ok = all(reports[name][f"active_units_layer_{l}"] > 0 for l in range(1, L + 1))
    print(f"target, {name}: active units in every layer: {'met' if ok else 'NOT met'}")
if "lvae" in reports:
    nll = reports["lvae"]["nll_nats"]
    print(f"LVAE test NLL {nll:.2f} nats (K={iw_samples}; dynamic binarization; {len(test)} test images; "
          f"{len(train)} training images; {epochs} epochs; {run.device}); the full-profile target is 81.5 nats "
          f"with K=5000 (Sønderby et al. report 81.74): {'met' if nll <= 81.5 else 'not met in this run'}")
if "hvae" in reports:
    nll = reports["hvae"]["nll_nats"]
    print(f"HVAE test NLL {nll:.2f} nats under the same conditions; full-profile target 84: "
          f"{'met' if nll <= 84 else 'not met in this run'}")
if ablations and "lvae" in reports:
    base = reports["lvae"]
    for a in ablations:
        r = reports[f"lvae_{a}"]
        print(f"LVAE {a:14s} ELBO {r['elbo_nats'] - base['elbo_nats']:+.2f} nats against the full recipe; "
              f"active units {r['active_units']} against {base['active_units']}")

# %% [markdown]
# ### Answers to the chapter's questions
#
# The statements below describe the `default`-profile run recorded on this page (10,000 training images,
# 12 epochs, 1,000 test images, one seed, a CPU); the lines printed above and the tables hold its numbers.
# A page executed with another profile should be read from its own printed lines.
#
# **How good are the likelihoods?** Far from the papers'. On this budget every model is between roughly 105
# and 117 nats of test NLL ($K = 100$, dynamic binarization), the LVAE being the best and the SVAE's final
# image the worst. Sønderby et al. report 81.74 nats for their best LVAE ($K = 5000$, dynamic binarization,
# a five-layer MLP trained for thousands of epochs on all 50,000 images); the targets (LVAE
# ≤ 81.5, HVAE ≤ 84, with $K = 5000$) can only be checked with the `full` profile on a GPU, which declares
# that configuration and has not been run for this page. The ranking on this page is a small-budget ranking.
#
# **Does the top layer do all the work?** No, and not the bottom layer alone either. In every model the lowest
# layer carries the largest KL share, but in the HVAE, Markov HVAE, LVAE and VLAE every layer keeps active
# units and a KL of several nats, so the hierarchy is used. The redraw grids show a gradient rather than a
# clean split: redrawing the *top* layer of the LVAE or the VLAE changes the digit's identity in almost every
# column; redrawing a lower layer mostly changes shape and stroke, but at this budget it still changes the
# class of several digits in the LVAE, whose lower layers are redrawn from broad conditional priors, while the
# VLAE's middle layer, the one with the fewest active units, changes little. The Zhao et al. argument that
# only the lowest layer is needed is a statement about a perfectly optimised ELBO with an expressive decoder;
# our factorised Bernoulli decoders are not expressive in that sense, and at this budget the upper layers pay
# for themselves. The model where layers do collapse is the **SVAE**: its first step, which must already
# reproduce the image under its own pixel loss, takes almost the whole KL, and the later steps' latents are
# nearly or completely switched off (one active unit in step 2, none in step 3). The per-step loss makes step
# 1 do all the work: the opposite of a coarse first step, and one of the failure modes the notes on this model
# anticipated.
#
# **Do Markov hierarchies fail with simple conditionals?** Not in the sense of collapsing: the Markov HVAE
# keeps every layer active, and its ELBO is as good as the HVAE's (within about a nat). What Zhao et al.'s
# argument predicts is subtler: in a Markov chain the image sees the upper layers only through $z_1$, so
# whatever the upper layers encode must be re-encoded in $z_1$, and a Gaussian $p(z_1 \mid z_2)$ can only
# shift and scale it. The redraw grids show this as a weaker separation of roles than in the LVAE or the VLAE:
# redrawing $z_2$ of the Markov HVAE changes the digit's class about as often as redrawing $z_3$ does, so the
# layers are used, but what they control overlaps.
#
# **Why do ladder models need warm-up and batch norm?** The ablation table answers it for this LVAE. Without
# batch normalisation the ELBO is more than 10 nats worse and without both the recipe's parts more than 30
# nats, with fewer active units; without warm-up alone the cost is a couple of nats. The mechanism, as far as
# these runs show it: early in training the reconstruction term cannot yet use most latent units, while the
# KL term pulls every unit towards its prior at once; a unit that reaches its prior gets no useful gradient
# back, since the decoder learns to ignore it. Warm-up delays that pressure until the decoder can use the
# units. In the LVAE the lower posteriors are precision-weighted with the top-down prior, so the bottom-up
# estimates and the top-down prior must be on comparable scales for either to influence the posterior; batch
# normalisation keeps the deterministic paths' activations, and thus the predicted means and log-variances,
# in that range, which matters most for the deeper, narrower blocks. At 12 epochs batch norm is the larger of
# the two effects; Sønderby et al. warm up over hundreds of epochs, and the effect of warm-up on the number of
# active units is expected to grow with the length of training, which only the `full` profile tests.
#
# **What does each layer of the VLAE encode?** On FashionMNIST the top-KL unit of the top layer, $z_3$,
# changes the *kind* of garment (a boot flattens into a sandal or sneaker, a pullover turns into a
# trouser-like shape); the middle layer's unit changes the silhouette within the class (the height of the
# boot's shaft); the lowest layer's unit changes only brightness and texture. On MNIST, redrawing $z_3$
# changes the digit, $z_2$ makes small shape changes, and $z_1$ mostly changes stroke width and local
# details, with the class of a few digits changing too. The
# VLAE's hierarchy comes from depth alone, since its layers are independent a priori: the deeper a latent is
# injected, the more nonlinear layers shape its effect, and the more global that effect is. Its middle layer
# has the fewest active units, so at this size two levels of abstraction carry most of its KL.
#
# **The intermediate images.** The MSVAE's sharpening stage lowers the ℓ1 error of the coarse stage-1 image
# substantially (the printed line above) and its images are visibly crisper. Its stage 1 alone, the part with
# a likelihood, is a weaker model than the LVAE; whether the cost comes from the ℓ1 term's gradient into stage
# 1 and the encoder or from having one latent layer, this run does not tell. The SVAE's chain barely changes
# after step 1, as the collapsed later steps predict.

# %%
record = run.finish()
