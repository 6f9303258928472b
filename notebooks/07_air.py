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
# # Objects: Attend-Infer-Repeat and Discrete AIR
#
# Chapter 05 explained a single digit as a prototype plus a transformation. A scene holds several objects,
# and its coarsest description is a list: *how many* objects there are and *where* each one is, before
# *what* each one looks like. Attend-Infer-Repeat (AIR) {cite}`eslami2016air` infers that list one object per
# step. At step $i$ a recurrent network decides whether there is another object ($z^{\text{pres}}_i$), where
# it is ($z^{\text{where}}_i$: a scale and a position), crops that window from the image with a spatial
# transformer {cite}`jaderberg2015stn`, and encodes the window with a small VAE ($z^{\text{what}}_i$). The
# decoder pastes each decoded object back at its place:
#
# $$
# p(x \mid z) = \mathrm{Bernoulli}\Big(x;\ \sum_{i \le n} \mathrm{paste}\big(\mathrm{dec}(z^{\text{what}}_i),
# z^{\text{where}}_i\big)\Big), \qquad n = \sum_i z^{\text{pres}}_i .
# $$
#
# **Discrete AIR** (DAIR), from the thesis behind chapter 05 {cite}`borea2021strimadec`, replaces the
# continuous what-code by chapter 05's D-VAE-ST: each object is one of $K$ prototypes, warped, so every
# detected object also gets a class. **Difference-AIR** {cite}`eslami2016air` feeds the recurrent network the
# residual between the image and what has been drawn so far. The thesis reports AIR's count accuracy as best
# 98.4 %, mean 85.1 % and worst 57.9 % over ten seeds (its protocol: training scenes, one sampled count), and
# DAIR far lower; public re-implementations reach about 98 %, but "about 80 % of runs succeed". Robustness is
# the central problem: this chapter measures it, and tests what decides it.

# %% tags=["parameters"]
profile = "default"  # the parameter profile this run was executed with
seed = 0  # base seed: run i of n_seeds uses seed + i
n_seeds = 3  # independent training runs of AIR and Difference-AIR (mean ± std, worst run, success rate)
ablation_seeds = 3  # runs of each ablated setting (seeds shared with AIR, so every comparison is paired)
train_scenes = 15000  # generated training scenes (digits from MNIST's training split)
test_scenes = 1000  # generated test scenes of 0-2 digits, and as many of 3 digits (MNIST's test split)
canvas = 50  # side of a scene in pixels
digit_size = 20  # side of the pasted digit patch (the central part of MNIST's 28 x 28 images)
max_overlap = 0.1  # largest overlap of two digits' patches, as a fraction of a patch
epochs = 4  # 940 steps of 64: 15 runs of the former 1,250 steps (5 x 16,000) would not fit in 20 minutes
batch_size = 64
lr = 1e-3
max_steps = 3  # inference steps: the most objects AIR can report
z_what = 50
hidden = 256  # LSTM state
features = 256  # image features fed to the LSTM
pres_prior = 0.01  # prior probability that another object is present
pres_init_logit = 0.0  # logit of q(z_pres) at initialisation: 0.5 per step (benchmarks/air_counting.md)
thesis_pres_init_logit = 2.0  # the thesis: 0.88 per step at initialisation
likelihood = "bernoulli"  # pixel likelihood of the models: bernoulli (clamped canvas) | gaussian (the thesis)
pixel_var = 0.2  # fixed variance of the Gaussian likelihood (the thesis: 0.2)
where_init_logvar = -7.0  # log-variance of q(z_where) at initialisation (the thesis: -3)
thesis_init_logvar = -3.0
ablations = ["thesis_pres_init", "gaussian"]  # AIR with one change each (also: nvil, thesis_where_init)
dair_class_estimator = "exact"  # DAIR's estimator for each object's class
dair_seeds = 3  # runs of DAIR (its exact class estimator costs about twice AIR's step)
extrapolation_steps = 4  # inference steps on the 3-digit test scenes (one more than a scene can need)
protocol_scenes = 1000  # training scenes scored with the thesis's protocol (one sampled count)
num_classes = 10  # DAIR's prototypes
dair_marginal_weight = 30.0  # weight of chapter 05's batch-marginal KL on DAIR's classes (0: the plain ELBO)
success_threshold = 0.9  # a run "learns to count" when its test count accuracy reaches this
iw_samples = 20  # importance samples K for the test NLL
nll_scenes = 200  # test scenes of the IW-NLL (0 means all)
n_show = 8  # scenes per figure row
retrain = False  # ignore cached checkpoints and train again

# %%
import pandas as pd

import c2f
from c2f import plots, scenes
from c2f.evaluate import describe, evaluate
from c2f.experiment import Trial, parameter_count, run_trials, seed_list
from c2f.findings import ch07
from c2f.models.factory import air_model
from c2f.train import TrainConfig

run = c2f.Run.start("07_air", globals())
device = run.device
seeds = seed_list(seed, n_seeds)

# %% [markdown]
# ## Data: multi-object MNIST, generated with its ground truth
#
# A scene is a square canvas (its side is printed below) with 0, 1 or 2 MNIST digits at uniformly drawn
# positions, each the central patch of its 28 × 28 image. MNIST fits each digit into a 20 × 20 box and then
# centres the 28 × 28 image on the digit's centre of mass, not on its box, so the central patch cuts some
# strokes; the share of ink it keeps is printed below. How these scenes compare with the sources' (the
# thesis's generator from its code, reference notes §7.2; the last column, the AIR paper's and pyro's
# example's, is from secondary descriptions that our notes have not checked against the code):
#
# | | this chapter | the thesis (StrImaDec) | the AIR paper, pyro (unverified) |
# |---|---|---|---|
# | canvas | 50 × 50 | 64 × 64 | 50 × 50 |
# | digit | central 20 × 20 patch | whole 28 × 28 image | whole 28 × 28 image |
# | placement | x and y uniform, independent | first digit on the diagonal (x = y) | uniform |
# | overlap | ≤ a set share of a patch (below); pixel maximum | in 82 % of two-digit scenes; summed | allowed |
# | ground truth | count, class and box of every digit | count only | count |
# | digits | MNIST train for training, MNIST test for testing | MNIST train only | MNIST |
#
# So the task here is easier than the thesis's on overlap and has no diagonal shortcut; a digit fills a
# slightly smaller part of the canvas (20 of 50 px against 28 of 64 or 50); and the window the model crops is
# the digit's size, which leaves no margin for a misplaced window. Every model and ablation below uses these
# same scenes. A second test set holds exactly three digits: the models are trained on at most two.

# %%
spec = dict(canvas=canvas, digit_size=digit_size, max_overlap=max_overlap)
train = scenes.load(scenes.SceneSpec(split="train", n=train_scenes, seed=seed, **spec), device=device)
test = scenes.load(scenes.SceneSpec(split="test", n=test_scenes, seed=seed + 1, **spec), device=device)
test3 = scenes.load(scenes.SceneSpec(split="test", n=test_scenes, counts=(3,), seed=seed + 2, **spec),
                    device=device)
print(f"{len(train)} training scenes (counts {train.counts.bincount().tolist()}), {len(test)} test scenes "
      f"(counts {test.counts.bincount().tolist()}), {len(test3)} test scenes of 3 digits; {canvas} x {canvas} "
      f"pixels, digits of {digit_size} x {digit_size}, overlap at most {max_overlap:.0%} of a digit's patch; "
      f"the central patch keeps {100 * scenes.patch_ink_share('test', digit_size):.1f} % of a digit's ink on average")
fig = scenes.show([test.images.x[:n_show], test3.images.x[:n_show]], ["0-2 digits", "3 digits"],
                  boxes=[test.boxes[:n_show], test3.boxes[:n_show]], present=[test.classes[:n_show] >= 0, None],
                  classes=[test.classes[:n_show], test3.classes[:n_show]],
                  title="test scenes with their true boxes and classes")
run.savefig(fig, "scenes")

# %% [markdown]
# ## The model, and the count as one discrete variable
#
# Step $i$ of the inference network, an LSTM as in the AIR paper (the thesis used an MLP with a linear state;
# an LSTM's gated state is the usual choice for carrying "what has been explained" over the steps), reads
# features of the image and the previous step's where and what, and outputs $q(z^{\text{pres}}_i = 1) = p_i$
# and a Gaussian $q(z^{\text{where}}_i)$ over $(s, c_x, c_y)$: a window of side $1/s$ of the canvas centred at
# $c$. A step only runs when every earlier step found an object, so its input never depends on a sampled
# presence; the presences only decide how many of the $T$ inferred objects the image uses. The count is
# therefore one categorical variable,
#
# $$
# q(n) = p_1 \cdots p_n\,(1 - p_{n+1}), \qquad p(n) = \rho^n (1 - \rho) \ (n < T),\quad p(T) = \rho^T,
# $$
#
# and the ELBO is
#
# $$
# \mathcal L = \mathbb E_{q(n)}\Big[\log p(x \mid z_{1..n}) - \sum_{i \le n}\big(\mathrm{KL}^{\text{where}}_i
# + \mathrm{KL}^{\text{what}}_i\big)\Big] - \mathrm{KL}\big(q(n)\,\|\,p(n)\big).
# $$

# %% [markdown]
# Every cost that a presence influences, the likelihood and the KLs of all later objects, sits inside the
# expectation over $n$. AIR estimates its gradient with NVIL {cite}`mnih2014nvil`, the score function with a
# learned, input-dependent baseline; chapter 05's estimators apply unchanged to this one categorical
# variable, and with only $T + 1 = 4$ values the **exact** expectation costs four likelihoods per scene and
# no sampling at all. The where and what codes are reparameterised. DAIR's classes get the D-VAE-ST's own
# estimator (exact enumeration of the $K$ prototypes by default), with every other object held at its
# sampled value.

# %%
train_cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, grad_clip=10.0)


def air(kind="air", **change):
    return lambda: air_model(kind, run.params, **change).to(device)


test_nll, train_probe = test.images.subset(nll_scenes, seed=None), train.head(protocol_scenes)


def score(model, s):
    ev = evaluate(model, test_nll, iw_samples=iw_samples, seed=0)
    out = {"test_elbo_nats": ev["elbo_nats"], "test_nll_nats": ev["nll_nats"],
           **scenes.evaluate_scenes(model, test, seed=0), "first_object_ink": scenes.first_object_ink(model, test)}
    three = scenes.evaluate_scenes(model, test3, seed=0, steps=extrapolation_steps)
    out.update({f"three/{k}": three[k] for k in ("count_accuracy", "over_count", "under_count", "f1")})
    protocol = scenes.evaluate_scenes(model, train_probe, seed=0)
    out["train/sampled_count_accuracy"] = protocol["sampled_count_accuracy"]
    out["success_rate"] = float(out["count_accuracy"] >= success_threshold)
    return out


# %%
steps = epochs * -(-len(train) // batch_size)
print(f"budget per run: {len(train)} scenes, {epochs} epochs of batches of {batch_size} = {steps} steps, "
      f"Adam lr {lr}; window {digit_size} px of a {canvas} px canvas (s0 = {canvas / digit_size:.2f})")
print(ch07.prices_line(max_steps, pres_init_logit, thesis_pres_init_logit, pixel_var))

# %% [markdown]
# ## Learning to count, and how reliably
#
# AIR, Difference-AIR and DAIR are trained with several independent seeds each (the table gives the
# numbers); a run *learns to count* when its count accuracy on the test scenes (the most probable count under
# $q(n \mid x)$ against the true one) reaches the success threshold. Difference-AIR differs from AIR only in
# what its recurrent network reads: at step $i$, the features of $x - \sum_{j < i} \mathrm{paste}_j$, the
# part of the image that earlier objects have not explained yet {cite}`eslami2016air`. Beside them, AIR with
# one change each, on the same seeds, so that every comparison is paired: q(z_pres) started at the
# thesis's logit 2 instead of this chapter's 0 (the line above gives what that means for q(n) at the first
# step), and that same start with the thesis's Gaussian likelihood (σ² printed in the parameters) instead of
# the clamped Bernoulli. Two ablations of the earlier page, the count's gradient from NVIL and the thesis's
# wide initial q(z_where), are not run by this profile (see the findings for the list), to keep three seeds
# of everything inside the page's budget; both sat at the over-counting optimum with the thesis's
# presence start. All share the data, the number of steps, the learning rate and the evaluation. The last row
# is the count that guesses without looking: the most frequent one.

# %%
changes = {"thesis_pres_init": ("air_thesis_pres_init", dict(pres_init_logit=thesis_pres_init_logit)),
           "gaussian": ("air_gaussian", dict(likelihood="gaussian", pres_init_logit=thesis_pres_init_logit)),
           "nvil": ("air_nvil", dict(count_estimator="nvil")),
           "thesis_where_init": ("air_thesis_init", dict(where_init_logvar=thesis_init_logvar))}
variants = {"air": air(), "air_difference": air("air_difference"), "dair": air("dair"),
            **{changes[a][0]: air(**changes[a][1]) for a in ablations}}
runs = {"air": seeds, "air_difference": seeds, "dair": seeds[:dair_seeds],
        **{changes[a][0]: seeds[:ablation_seeds] for a in ablations}}
n_params = {name: parameter_count(build()) for name, build in variants.items()}
results = {}
for name, build in variants.items():
    results.update(run_trials([Trial(name, build, train_cfg)], train.images, seeds=runs[name], score=score,
                              key="07", retrain=retrain))
    run.log(f"{name}/multi_mnist", results[name].summary)

# %%
labels = {"air": "AIR (exact count)", "air_difference": "Difference-AIR", "dair": "DAIR",
          "air_thesis_pres_init": "AIR, q(z_pres) starts at logit 2 (thesis)",
          "air_gaussian": "AIR, Gaussian σ² = 0.2, logit 2 (thesis)", "air_nvil": "AIR, NVIL count",
          "air_thesis_init": "AIR, thesis where-init"}
table = pd.DataFrame({labels[n]: {
    "seeds": len(o.seeds), "parameters": f"{n_params[n]:,}",
    "count accuracy": describe(o.summary, "count_accuracy", 1, 100, " %"),
    "learned to count": ch07.learned(o, success_threshold),
    "thesis protocol: training scenes, sampled count": describe(o.summary, "train/sampled_count_accuracy", 1,
                                                                100, " %"),
    "recall": describe(o.summary, "recall", 1, 100, " %"), "precision": describe(o.summary, "precision", 1, 100,
                                                                               " %"),
    "F1": describe(o.summary, "f1", 2), "box IoU": describe(o.summary, "box_iou", 2),
    "train s": f"{sum(o.train_seconds) / len(o.seeds):.0f}"} for n, o in results.items()}).T
majority = test.counts.bincount().max().item() / len(test)
table.loc["most frequent count, no model", "count accuracy"] = f"{100 * majority:.1f} %"
table.fillna("")

# %%
fig, ax = plots.plt.subplots(figsize=(8, 3.2))
styles = plots.model_styles(list(results))  # one colour per family, variants by marker
for i, (name, o) in enumerate(results.items()):
    acc = [100 * r["count_accuracy"] for r in o.runs]
    ax.scatter([i] * len(acc), acc, color=styles[name]["color"], marker=styles[name]["marker"], s=24, zorder=3)
    ax.plot([i - 0.3, i + 0.3], [sum(acc) / len(acc)] * 2, color=styles[name]["color"], lw=2)
ax.axhline(100 * majority, color="k", ls="--", lw=1, label="most frequent count, no model")
ax.axhline(100 * success_threshold, color="0.5", ls=":", lw=1, label="learned to count")
ax.set_xticks(range(len(results)), [labels[n] for n in results], rotation=20, ha="right", fontsize="small")
ax.set_ylabel("test count accuracy (%)")
ax.set_title("count accuracy, one dot per seed, the bar their mean")
ax.legend(fontsize="small", loc="lower right")
fig.tight_layout()
run.savefig(fig, "count_accuracy")

# %%
true_mean = train.counts.float().mean().item()
fig, axes = plots.plt.subplots(1, len(results), figsize=(3.4 * len(results), 3.2), sharey=True, squeeze=False)
for ax, (name, o) in zip(axes[0], results.items()):
    for s, h in zip(o.seeds, o.histories):
        ax.plot(h["steps"]["step"], h["steps"]["count"], lw=1.2, label=f"seed {s}")
    ax.axhline(true_mean, color="k", ls="--", lw=1, label="true mean count")
    ax.set_title(labels[name], fontsize="small")
    ax.set_xlabel("training step")
axes[0, 0].set_ylabel("mean E_q[n] of the batch")
axes[0, -1].legend(*axes[0, 0].get_legend_handles_labels(), fontsize="small", bbox_to_anchor=(1.02, 1),
                   loc="upper left")  # the first panel has the most seeds
fig.tight_layout()
run.savefig(fig, "count_during_training")

# %% [markdown]
# The second figure follows the expected count of each training batch, seed by seed, against the true mean
# count of the scenes (dashed): the training history logs the expected count, not the accuracy, so this is the
# page's curve against training steps. A run that has not learned to count sits above the line. What decides
# it was searched for one change at a time in `benchmarks/air_counting.md` (29 runs at 1,250 steps: the
# likelihood's scale, the window's margin, the presence start, z_what, the learning rate, the number of
# steps). Three single changes made AIR count there; this page repeats two of them, and leaves out the third,
# a window wider than the digit, because it breaks the IoU ≥ 0.5 scoring of the boxes. Our reading of the
# mechanism, which the findings test on this page's runs: with the thesis's start, q(n = T) is large from the
# first step (the line above gives it), so all objects are trained together and settle on a split of each
# digit, each object drawing part of it; starting q(z_pres) at one half uses fewer objects from the start.
# A cheaper pixel acts from the other side: under the Gaussian a missed ink pixel costs fewer nats (the same
# line gives both prices), so a second partial object no longer pays for its KL. The findings measure the
# split: on one-digit test scenes, the share of the digit's ink that the first object draws, in the runs that
# count and in those that do not. The benchmark's other factors (z_what 10, lr 3e-4, twice the steps, a
# Gaussian priced like the clamp) left AIR at the over-counting optimum on each of their two seeds and are not
# repeated here.

# %% [markdown]
# ## What AIR sees
#
# Reconstructions of test scenes by the first seed of each variant, with the windows of the objects it
# uses, one colour per step (first step blue, then orange, then green).

# %%
x_show = test.images.fixed_binarization(0).x[:n_show]
rows, names, boxes, present = [x_show], ["scene"], [test.boxes[:n_show]], [test.classes[:n_show] >= 0]
for name, o in results.items():
    d = o.model.detect(x_show)
    rows.append(d["reconstruction"]), names.append(labels[name])
    boxes.append(d["boxes"]), present.append(d["present"])
fig = scenes.show(rows, names, boxes=boxes, present=present,
                  title="test scenes (true boxes) and reconstructions with the inferred windows")
run.savefig(fig, "reconstructions")

# %% [markdown]
# ## Discrete AIR: a class for every object
#
# DAIR keeps AIR's count and windows and explains each window with chapter 05's D-VAE-ST: one of
# $K$ prototypes (the number is printed below), warped by an affine transformation. Its
# objects are scored against the true digits: each detected window is matched to a true digit by the
# Hungarian method on box overlap (IoU ≥ 0.5), and the matched objects' classes are mapped one-to-one onto
# the digit classes, as chapter 05 scores its clusters.
#
# This DAIR departs from the thesis's (seed 001 of its code) in six ways: (1) the inference network is an
# LSTM, as in the AIR paper, where the thesis used an MLP with a linear state; (2) each object's class is
# summed out exactly over the $K$ prototypes (chapter 05's exact estimator) instead of sampled; (3) a
# regulariser outside the ELBO, the KL between the batch's mean class probabilities and the uniform
# distribution, with weight 30, keeps the objects from all falling into one class; (4) the prototypes are
# initialised by k-means++ on the first batch's windows; (5) the prototypes are free parameters, where the
# thesis decoded a one-hot class through a 10 → 800 → 784 network; (6) the pixel likelihood is the clamped
# Bernoulli of the rest of the chapter, where the thesis used a Gaussian with σ² = 0.3. DAIR also shares AIR's
# presence start (logit 0), which was chosen on vanilla AIR alone: `benchmarks/air_counting.md` records
# checks of DAIR at this page's budget with either start, neither of which counted on every seed, so DAIR's
# seeds below may disagree.

# %%
dair = results["dair"]
print(f"DAIR ({num_classes} prototypes, {dair_class_estimator} class estimator, {dair_seeds} seed(s)): count "
      f"accuracy {describe(dair.summary, 'count_accuracy', 1, 100, ' %')}, class accuracy of the matched "
      f"objects {describe(dair.summary, 'class_accuracy', 1, 100, ' %')}, box IoU "
      f"{describe(dair.summary, 'box_iou', 2)}")
d = dair.model.detect(x_show)
fig = scenes.show([x_show, d["reconstruction"]], ["scene", "DAIR"], boxes=[test.boxes[:n_show], d["boxes"]],
                  present=[test.classes[:n_show] >= 0, d["present"]],
                  classes=[test.classes[:n_show], d["classes"]],
                  title="true classes, and DAIR's windows with the prototype each one chose")
run.savefig(fig, "dair_reconstructions")

# %%
fig = plots.image_grid(dair.model.dvae.prototypes(), nrow=num_classes, title="DAIR's prototypes (0 to K-1)")
run.savefig(fig, "dair_prototypes")

# %% [markdown]
# ## Extrapolation: three digits after training on at most two
#
# Every model was trained on scenes of 0-2 digits and has $T = 3$ steps. On scenes of exactly three digits,
# AIR's recurrent network must decide to continue after a second object, which it never had to do in
# training. Difference-AIR sees what is left to explain rather than the whole image, which Eslami et al.
# report to extrapolate far better (about 80 % against about 0 %: read off the paper's figure through the
# aleju/papers summary, reference notes §6.5; the paper prints no exact values). The test runs the trained
# networks for one step more than they were trained with (the number is printed in the parameters), so a
# model can report four objects: a run that over-counts shows as over-counted scenes, not as a lucky 3.

# %%
counting = {n: [r["three/count_accuracy"] for r in o.runs if r["count_accuracy"] >= success_threshold]
            for n, o in results.items()}
for n, v in counting.items():
    if v:
        run.log(f"{n}/multi_mnist", {"three/count_accuracy_of_counting_runs": sum(v) / len(v)})
extrapolation = pd.DataFrame({labels[n]: {
    "0-2 digits": describe(o.summary, "count_accuracy", 1, 100, " %"),
    f"3 digits, T = {extrapolation_steps}": describe(o.summary, "three/count_accuracy", 1, 100, " %"),
    "over-counted": describe(o.summary, "three/over_count", 1, 100, " %"),
    "under-counted": describe(o.summary, "three/under_count", 1, 100, " %"),
    "detection F1": describe(o.summary, "three/f1", 2),
    "3 digits, runs that count": (f"{100 * sum(counting[n]) / len(counting[n]):.1f} % ({len(counting[n])} of "
                                  f"{len(o.runs)} runs)" if counting[n] else "no run counts")}
    for n, o in results.items()}).T
extrapolation

# %% [markdown]
# ## Likelihoods
#
# The ELBO sums the count out exactly; the negative log-likelihood is the importance-weighted bound with $K$
# joint samples of the count and all codes (fixed binarization of the first test scenes; both in nats per
# scene, whatever its number of digits). The Gaussian ablation is left out: its likelihood is a density of the
# same binary pixels, not a probability, so its nats are not comparable.

# %%
likelihoods = pd.DataFrame({labels[n]: {
    "test ELBO (nats)": describe(o.summary, "test_elbo_nats", 1),
    f"test NLL, K={iw_samples} (nats)": describe(o.summary, "test_nll_nats", 1),
    "count accuracy": describe(o.summary, "count_accuracy", 1, 100, " %")}
    for n, o in results.items() if n != "air_gaussian"}).T
print(f"{len(test_nll)} test scenes, K = {iw_samples}, {run.profile} profile")
likelihoods

# %% [markdown]
# ## Findings
#
# Computed from the tables above (this run's profile and budget are printed first).

# %%
print(f"budget: {steps} steps of {batch_size} scenes per run, {len(test)} + {len(test3)} test scenes, "
      f"profile {run.profile}, device {run.device}")
pairs = [("air", "air_thesis_pres_init"), ("air_gaussian", "air_thesis_pres_init"), ("air_difference", "air"),
         ("dair", "air"), ("air_nvil", "air"), ("air_thesis_init", "air")]
print(*ch07.count_lines(results, labels, success_threshold, pairs), sep="\n")
print(ch07.mechanism_line(results, success_threshold))
print(ch07.where_line(results["air"].summary))
chance = max(test.classes[test.classes >= 0].bincount().tolist()) / int((test.classes >= 0).sum())
print(ch07.what_line(dair.summary, chance))
print(ch07.three_digit_line(results, labels, extrapolation_steps))
print(ch07.protocol_line(results["air"].summary, labels["air"]))
print("ablations not run by this profile:", ", ".join(a for a in changes if a not in ablations) or "none")

# %%
record = run.finish()
