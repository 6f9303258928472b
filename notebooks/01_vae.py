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
# # Variational autoencoders: the background
#
# Every model in this book is a *latent-variable model*: an image $x$ is explained by unobserved causes $z$
# drawn from a simple prior, $p_\theta(x) = \int p_\theta(x \mid z)\, p(z)\, dz$. Whether those causes come
# out ordered from coarse to fine is the question of the later chapters; this one sets up the machinery
# they all share, the variational autoencoder (VAE) {cite}`kingma2014vae,rezende2014`, and measures it
# honestly on binarized MNIST.
#
# The page is the executed record of its experiment. The card below says which parameters, seed, commit,
# packages and device produced it; the last cell lists every number that was recorded.

# %% tags=["parameters"]
profile = "default"  # the parameter profile this run was executed with
seed = 0  # base seed: model i of n_seeds uses seed + i
n_seeds = 3  # independent training runs per model (mean ± std reported)
dataset = "mnist"  # dynamically binarized MNIST
train_size = 0  # training images (0 means all 50000)
test_size = 2000  # first test images used by every evaluation (0 means all 10000)
batch_size = 128
lr = 1e-3
schedule = "constant"  # learning-rate schedule: constant | cosine
latent_dim = 32
mlp_hidden = [512, 256]  # encoder widths; the decoder mirrors them
conv_channels = [32, 64]  # conv encoder channels; the decoder mirrors them
conv_features = 256
epochs_mlp = 6  # the same budget for both VAEs, so that they can be compared
epochs_conv = 6
epochs_2d = 8  # the 2-D latent model used for the manifold plot
kl_warmup_epochs = 0.0
iw_samples = 100  # importance samples K for the test NLL
iw_curve_images = 200  # test images for the NLL-versus-K curve (K up to 10 × iw_samples, at most 1000)
retrain = False  # ignore cached checkpoints and train again

# %%
import torch

import c2f
from c2f import data, plots
from c2f.evaluate import active_units, describe, evaluate, iw_curve, kl_active_units, latent_means
from c2f.experiment import Trial, parameter_count, run_trials, seed_list, splits
from c2f.findings import ch01 as findings
from c2f.models.factory import vae_model
from c2f.train import TrainConfig

run = c2f.Run.start("01_vae", globals())
device = run.device

# %% [markdown]
# ## Data: dynamically binarized MNIST
#
# The benchmark of the VAE literature is MNIST with binary pixels. We use *dynamic* binarization: every
# time an image is drawn for training, each pixel is re-sampled as a Bernoulli variable with the grey
# level as its probability {cite}`burda2016iwae`. This acts as data augmentation; the IWAE code's README reports
# numbers about 2 nats better than on Larochelle's fixed binarization {cite}`larochelle2011nade`, so the two are never
# mixed in one table. The last 10,000 training images are held out as the validation split; evaluation
# uses one fixed binarization (seed 0) of the test images so that every number repeats.

# %%
train, valid, test = splits(dataset, device=device, train_size=train_size, test_size=test_size)
print(f"{dataset}: {len(train)} training, {len(valid)} validation and {len(test)} test images of shape "
      f"{train.image_shape}; binarization: {train.binarize}")
x_batch, _ = next(data.batches(test, 20, shuffle=False, seed=seed))
fig = plots.image_grid(x_batch, nrow=20, title="one dynamic binarization of the first 20 test images")
run.savefig(fig, "data")

# %% [markdown]
# ## The evidence lower bound
#
# The likelihood $p_\theta(x)$ is an intractable integral, so we introduce an *inference network*
# $q_\phi(z \mid x)$, a diagonal Gaussian whose mean and variance an encoder computes from $x$. For any
# such $q$, Jensen's inequality gives the evidence lower bound (ELBO)
#
# $$
# \log p_\theta(x) \;\ge\; \mathcal{L}(x) \;=\;
# \underbrace{\mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x \mid z)\big]}_{\text{reconstruction}}
# \;-\; \underbrace{\mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)}_{\text{rate}},
# $$
#
# and the gap is exactly $\mathrm{KL}(q_\phi(z\mid x) \,\|\, p_\theta(z \mid x))$. The first term asks
# the decoder to explain the image from a code; the second charges, in nats, for how much the code says
# about this particular image. With $p(z) = \mathcal N(0, I)$ and a Gaussian $q$ the KL is available in
# closed form (`torch.distributions.kl_divergence`); the decoder $p_\theta(x\mid z)$ is a product of
# Bernoullis, one per pixel.
#
# **The reparameterisation trick.** To differentiate the reconstruction term with respect to $\phi$ we
# write the sample as a deterministic function of noise, $z = \mu_\phi(x) + \sigma_\phi(x) \odot
# \varepsilon$ with $\varepsilon \sim \mathcal N(0, I)$. The expectation is then over $\varepsilon$, which
# does not depend on $\phi$, and one Monte-Carlo sample gives a low-variance unbiased gradient
# (`rsample()` in `torch.distributions`). Because one encoder serves every image, inference is
# *amortised*: a single forward pass replaces an optimisation per data point.
#
# The training loss is the negative ELBO, summed over pixels and latent dimensions and averaged over the
# batch. Averaging the reconstruction term over the 784 pixels instead would divide it by 784 while the KL
# keeps its scale: it silently *up*-weights the KL relative to the reconstruction (a β-VAE
# {cite}`higgins2017betavae` with β = 784), and gives blurry models that switch off most of their latents.
#
# ## Two VAEs
#
# An MLP VAE (784–512–256–$z$ and back) and a convolutional VAE (two strided convolutions with
# 32 and 64 channels, a dense layer, and the mirror-image decoder) share the latent size and the training
# recipe, and get the **same budget**: `epochs_mlp` = `epochs_conv` epochs over the same images, hence the
# same number of gradient steps (the conv VAE costs several times more compute per step; the measured
# times are printed below). `run_trials` builds each model right after seeding, trains it (or loads it:
# the checkpoint cache is keyed by the model's configuration, its training configuration, the data and the
# seed) and scores it on the test images.

# %%
seeds = seed_list(seed, n_seeds)
print(f"budget: the MLP VAE {epochs_mlp} and the conv VAE {epochs_conv} epochs of {-(-len(train) // batch_size)} steps "
      f"({batch_size} images each) with each of {n_seeds} seed(s); the 2-D VAE {epochs_2d} epochs, first seed only")


def score(model, s):
    metrics = evaluate(model, test, iw_samples=iw_samples, seed=s, per_image=True)  # per image: for comparisons
    n_cov, variances = active_units(latent_means(model, test))
    return {**{f"test_{k}": v for k, v in metrics.items()}, "active_units": n_cov,
            "kl_active_units": kl_active_units(metrics["kl_per_dim"]), "variances": variances}


def trial(name, arch, epochs):
    return Trial(name, lambda: vae_model(arch, run.params).to(device),
                 TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, schedule=schedule,
                             kl_warmup_epochs=kl_warmup_epochs))


trials = [trial("vae_mlp", "mlp", epochs_mlp), trial("vae_conv", "conv", epochs_conv)]

# %%
results = run_trials(trials, train, seeds=seeds, score=score, run=run, key="01", valid=valid, retrain=retrain)
seconds = {n: r.wall_s for n, r in results.items()}  # training (or loading from the cache) and scoring
models = {n: r.model for n, r in results.items()}
epochs = {t.name: t.train.epochs for t in trials}
histories = {n: r.history for n, r in results.items()}
summaries = {n: r.summary for n, r in results.items()}
for name, s in summaries.items():
    print(f"{name}: {parameter_count(models[name]):,} parameters, {epochs[name]} epochs, "
          f"{seconds[name]:.0f} s to train (or load) and score; test ELBO {describe(s, 'test_elbo_nats')} nats, "
          f"NLL (K={iw_samples}) {describe(s, 'test_nll_nats')} nats over {n_seeds} seed(s)")

# %% [markdown]
# ### Training curves
#
# Solid lines are running means of the training objective; squares are the ELBO on the validation images
# after each epoch. The reconstruction term falls fast while the decoder learns the average digit; the KL
# then grows as the encoder pays rate for information that buys more in reconstruction than it costs.

# %%
fig = plots.training_curves(histories)
run.savefig(fig, "training_curves")
for name, h in histories.items():
    v = h["epochs"]["valid_elbo"]
    rise = v[-1] - v[-2] if len(v) > 1 else float("nan")
    print(f"{name}: validation ELBO {v[-1]:.2f} nats after {len(v)} epochs, {rise:+.2f} over the last epoch "
          f"({'still rising' if rise > 0.1 else 'flat or falling'})")
print(findings.comparison(results, epochs, iw_samples) + f" (training, or loading, and scoring took "
      f"{seconds['vae_conv']:.0f} s for the conv VAE and {seconds['vae_mlp']:.0f} s for the MLP VAE in this run)")

# %% [markdown]
# ### Reconstructions and samples
#
# Reconstructions decode the posterior mean of each test image; samples decode $z \sim p(z)$. Both show
# the Bernoulli means (pixel probabilities), not a binary sample, which is the usual way to display them.

# %%
x = test.fixed_binarization(seed).x[:12]
for name, model in models.items():
    fig = plots.reconstructions(x, model.reconstruct(x), title=f"{name}: test images (top), reconstructions")
    run.savefig(fig, f"{name}_reconstructions")

# %%
torch.manual_seed(seed)
for name, model in models.items():
    fig = plots.image_grid(model.sample(60), nrow=20, title=f"{name}: samples from the prior")
    run.savefig(fig, f"{name}_samples")

# %% [markdown]
# ## How many latent dimensions does the model use?
#
# The KL term is a sum over latent dimensions, so we can see which dimensions carry information. Burda et
# al. {cite}`burda2016iwae` call unit $u$ *active* when its posterior mean varies across the data,
# $\mathrm{Cov}_x\big(\mathbb E_{q}[z_u \mid x]\big) > 10^{-2}$. That criterion looks at the means only:
# a unit whose mean moves a little while its posterior stays almost as broad as the prior passes it, yet
# carries almost nothing. We therefore also count units by their information, the **per-unit KL
# criterion** $\mathbb E_x\,\mathrm{KL}\big(q(z_u \mid x)\,\|\,p(z_u)\big) > 0.1$ nats, and the text uses
# that one; the table reports both. Inactive units have collapsed to the prior: their KL is near zero and
# the decoder ignores them. A VAE typically switches off a part of its latents; this *posterior collapse*
# {cite}`bowman2016generating` of whole dimensions is the first sign of the ordering that later chapters try
# to impose on purpose.

# %%
first = {n: r.runs[0] for n, r in results.items()}  # the first seed's model, the one the figures show
fig = plots.kl_per_dimension({n: r["test_kl_per_dim"] for n, r in first.items()},
                             {n: r["variances"] for n, r in first.items()})
run.savefig(fig, "kl_per_dimension")
quiet = {}  # per model: the KL of each unit that passes the covariance criterion but carries at most 0.1 nats
for name, r in first.items():
    kl = torch.tensor(r["test_kl_per_dim"])
    quiet[name] = kl[(r["variances"].cpu() > 0.01) & (kl <= 0.1)]
    both = len(quiet[name])
    print(f"{name}: {r['kl_active_units']} of {latent_dim} units carry more than 0.1 nats (KL criterion), "
          f"{r['active_units']} pass the covariance criterion; {both} pass the covariance criterion with a KL "
          f"of at most 0.1 nats (largest such KL {quiet[name].max().item() if both else 0:.3f}); "
          f"total KL {r['test_kl_nats']:.2f} nats")

# %% [markdown]
# ### Latent traversals
#
# Starting from the posterior mean of one test image, we set one latent dimension at a time to values from
# −2.5 to 2.5 (prior standard deviations; the column labels) and decode. Rows are the six dimensions with
# the largest KL, most informative first, each labelled with its index and its test KL; inactive dimensions
# would give constant rows.

# %%
values = torch.linspace(-2.5, 2.5, 11)
for name, model in models.items():
    z0 = model.latent_means(x[:1])
    kl = torch.tensor(first[name]["test_kl_per_dim"])
    top = kl.argsort(descending=True)[:6].tolist()
    fig = plots.traversal(model.generate, z0, top, values, labels=[f"z[{d}], KL {kl[d]:.2f}" for d in top],
                          title=f"{name}: the 6 highest-KL dimensions set to −2.5 … 2.5")
    run.savefig(fig, f"{name}_traversals")

# %% [markdown]
# ## A two-dimensional latent space
#
# With only two latent dimensions the whole generative model fits in one picture: decoding a grid of $z$
# at evenly spaced quantiles of the prior shows how the digits are laid out, and the posterior means of
# the test images, coloured by their (unused) labels, show which regions each class occupies.

# %%
trial_2d = Trial("vae_mlp_2d", lambda: vae_model("mlp", run.params, latent_dim=2).to(device),
                 TrainConfig(epochs=epochs_2d, batch_size=batch_size, lr=lr))
score_2d = lambda model, s: {f"test_{k}": v for k, v in evaluate(model, test, seed=s).items()  # noqa: E731
                             if k.endswith("nats")}
out_2d = run_trials([trial_2d], train, seeds=[seed], score=score_2d, run=run, key="01", retrain=retrain)["vae_mlp_2d"]
model_2d, metrics_2d = out_2d.model, out_2d.summary
fig, axes = plots.plt.subplots(1, 2, figsize=(12, 5.6), gridspec_kw={"width_ratios": [1, 1.15]})
plots.latent_manifold(model_2d.generate, n=20, device=device, ax=axes[0], title="decoded prior quantiles")
plots.latent_scatter(latent_means(model_2d, test), test.y, ax=axes[1],
                     title="posterior means of test images")
run.savefig(fig, "vae_2d_manifold")
print(f"2-D VAE: test ELBO {metrics_2d['test_elbo_nats']:.2f} nats")

# %% [markdown]
# ## Importance-weighted estimates of the likelihood
#
# The ELBO is only a bound. Burda et al. {cite}`burda2016iwae` showed that averaging $K$ importance
# weights inside the logarithm gives a tighter one,
#
# $$
# \log p_\theta(x) \;\ge\; \mathcal L_K(x) \;=\; \mathbb E\Big[\log \frac1K \sum_{k=1}^K
# \frac{p_\theta(x, z_k)}{q_\phi(z_k \mid x)}\Big], \qquad z_k \sim q_\phi(z\mid x),
# $$
#
# with $\mathcal L_1 = \mathcal L$ and $\mathcal L_K \to \log p_\theta(x)$ as $K \to \infty$. We compute it
# with a log-sum-exp for numerical stability and report $-\mathcal L_K$ as the test NLL, always with its
# $K$. The curve below shows the estimate tightening on the first test images. It goes ten times past the
# table's $K$ (up to 1000): each curve is computed from one set of samples per image, $\mathcal L_K$ using
# the first $K$ of them, so it costs one evaluation at its largest $K$ and its steps are not blurred by
# fresh noise. How far the curve still falls beyond the table's $K$ says how loose the table's NLL is.

# %%
ks = [k for k in (1, 3, 10, 30, 100, 300, 1000) if k <= min(1000, max(10, 10 * iw_samples))]
x_curve = test.fixed_binarization(seed).x[:iw_curve_images]
curve = {}
for name, model in models.items():
    torch.manual_seed(seed)
    curve[name] = iw_curve(model, x_curve, ks)
fig, ax = plots.plt.subplots(figsize=(5.5, 3.5))
for name, nll in curve.items():
    ax.plot(ks, nll, **plots.model_styles(list(curve))[name], label=name)
ax.set_xscale("log")
ax.set_xlabel("importance samples K")
ax.set_ylabel("−$\\mathcal{L}_K$ (nats)")
ax.set_title(f"NLL estimate versus K ({len(x_curve)} test images)")
ax.legend()
run.savefig(fig, "nll_versus_k")
k_table = max(k for k in ks if k <= iw_samples)
gaps = {}  # per model: how much −L_K falls over the last step of K, and from the table's K to the largest
for name, nll in curve.items():
    gap_last, gap_table = gaps[name] = nll[-2] - nll[-1], nll[ks.index(k_table)] - nll[-1]
    run.log(name, {"curve_nll_gap_last_two_k": gap_last, "curve_nll_gap_table_k": gap_table})
    print(f"{name}: −L_K falls by {gap_last:.2f} nats from K={ks[-2]} to K={ks[-1]} and by {gap_table:.2f} nats "
          f"from K={k_table} to K={ks[-1]} ({'still falling' if gap_last > 0.05 else 'flat'}); an NLL at "
          f"K={k_table} is therefore at least {gap_table:.2f} nats above the true NLL on these images")

# %% [markdown]
# ## Results
#
# The reference points are Burda et al.'s one-layer VAE, 86.76 nats {cite}`burda2016iwae` (their Table 1, as
# quoted by the *parmesan* library's README), and 84.78 nats, which is not Burda et al.'s: it is the number the
# parmesan README reports for its own implementation, an MLP VAE with batch normalisation (500 hidden and 100
# latent units, one importance sample in training). Both are on dynamically binarized MNIST, all 10,000 test
# images, $K = 5000$. Only the `full` profile (a GPU, hundreds of epochs, all test images, $K = 1000$)
# is comparable with them; the CPU `default` profile trains for minutes and evaluates on the first
# `test_size` images with $K = 100$, so its numbers are expected to be several nats worse, and the
# importance-sampling curve above says how much of the gap is the estimator's. The table and the lines
# under it are computed from this run's record, whatever its profile; with several seeds each cell is
# mean ± std over seeds and the worst seed.

# %%
import pandas as pd  # noqa: E402

columns = {"test_elbo_nats": "test ELBO (nats)", "test_nll_nats": f"test NLL, K={iw_samples} (nats)",
           "test_recon_nats": "reconstruction (nats)", "test_kl_nats": "KL (nats)",
           "test_bits_per_dim": "bits/dim", "kl_active_units": "active units (KL > 0.1 nats)",
           "active_units": "active units (Cov > 0.01)"}
table = pd.DataFrame({
    name: {"epochs": epochs[name],
           **{label: describe(s, k, digits=3 if "bits" in k else 2) for k, label in columns.items()}}
    for name, s in summaries.items()
}).T
display(table.style.set_caption(
    f"{dataset}, dynamic binarization; {len(test)} test images (fixed binarization); "
    f"{'mean ± std over ' + str(n_seeds) + ' seeds' if n_seeds > 1 else 'one seed'}; {run.profile} profile"))
print(findings.target([r["test_nll_nats_per_image"] for r in results["vae_conv"].runs], iw_samples))

# %% [markdown]
# **What this page shows.** The paragraph below is computed from this run's numbers (its profile, seeds and
# budget are in the record card at the top).

# %%
from IPython.display import Markdown  # noqa: E402

rise = {n: h["epochs"]["valid_elbo"][-1] - h["epochs"]["valid_elbo"][-2] if len(h["epochs"]["valid_elbo"]) > 1
        else float("nan") for n, h in histories.items()}
counts = {n: (first[n]["kl_active_units"], first[n]["active_units"], len(quiet[n])) for n in first}
quiet_max = max([q.max().item() for q in quiet.values() if len(q)], default=0.0)
first_seed = f" (the first of the {n_seeds} seeds' models)" if n_seeds > 1 else ""
display(Markdown(". ".join([
    findings.comparison(results, epochs, iw_samples)
    + f"; training and scoring the conv VAE took {seconds['vae_conv'] / seconds['vae_mlp']:.1f} times as long",
    findings.convergence(rise) + first_seed, findings.units(counts, latent_dim, quiet_max) + first_seed,
    findings.iw_tightening(gaps, ks, k_table, len(x_curve))]) + "."))

# %% [markdown]
# **What to take from this chapter.** A VAE trades reconstruction against rate, one nat at a time; it
# uses only part of its latent space, and how large that part looks depends on the criterion (the
# covariance criterion counts units that carry almost nothing); and its likelihood must be reported with
# the estimator and its $K$, since the estimate may still fall beyond the $K$ of the table (the curve says by
# how much). Models are compared at a stated, equal budget, and ranked only where the interval of their
# difference says so. None of this orders the latents: in the traversals every high-KL dimension
# changes several aspects of the digit at once. The next chapters ask how to make the first latents carry the
# coarse content of the image.

# %%
record = run.finish()
