"""Why vanilla AIR does not learn to count on chapter 07's default page (issue 23): an ablation.

    python benchmarks/air_counting.py --settings gauss_0.2 margin_28 --seeds 0 1   # train (or load) and score
    python benchmarks/air_counting.py --table                                      # the markdown table
    python benchmarks/air_counting.py --quick                                      # a seconds-long check
    python benchmarks/air_counting.py --probe --settings baseline --seeds 0 1      # the mechanism probe

Every run uses chapter 07's default profile: the same scenes (16,000 training scenes of 0-2 digits from
MNIST's training split, seed 0; 1,000 test scenes of 0-2 digits, seed 1; 1,000 of 3 digits, seed 2; 50 px
canvas, 20 px digits, overlap <= 10 %), the same budget (5 epochs of 64 scenes = 1,250 steps, Adam 1e-3,
gradient clip 10), the same network sizes and initialisation (where_init_logvar −7), the exact count
estimator, and the chapter's own scoring (:func:`c2f.scenes.evaluate_scenes`: the most probable count under
q(n | x) on one fixed binarization of the test scenes). Training goes through :func:`c2f.experiment.run_trials`
(so through :func:`c2f.train.fit`); each run is cached under ``$C2F_CACHE`` as ``bench23-<setting>-seed<s>``.
The chapter's own AIR (setting ``baseline``) is built exactly as the chapter builds it and cached under the
chapter's name (``07-air-seed<s>``), so a checkpoint of the chapter's run is loaded instead of retrained.

Each setting changes one thing of the chapter's AIR (the inference network is always the AIR paper's: it
sees the image, never the residual):

* ``likelihood``: ``bernoulli`` is the chapter's, Bernoulli(clamp(Σ objects, 1e−4, 1 − 1e−4));
  ``gaussian`` is the thesis's and pyro's, N(x; Σ objects, σ² I) on the same binarized pixels, not clamped
  (σ² = 0.2 in the thesis, σ = 0.3 in pyro and addtt).
* ``window``: the side in pixels of the window on the canvas (the chapter: 20 = the digit patch). The scale
  prior's mean becomes canvas / window and the decoded object has window x window pixels (one object pixel
  per canvas pixel, as in the chapter).
* ``z_what`` (the chapter 50, the thesis 10), the learning rate, the number of steps.
* ``pres_init_logit``: where q(z_pres) starts (the chapter and the thesis: logit 2, so q(n = 3) = 0.68 at
  step 0); not in the issue's list, added after a probe of the chapter's trained AIR (see the .md).

Beside the chapter's scores, each run records E_q[n] and the most probable count per true count, and on the
one-digit test scenes the IoU of the first step's window with the digit's box and the first object's mass
as a fraction of the scene's ink (does one object explain the digit?).

The results are merged into ``benchmarks/air_counting.json`` (one entry per setting and seed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from c2f import scenes
from c2f.experiment import Trial, run_trials
from c2f.models import AIR, AIRConfig
from c2f.train import TrainConfig
from c2f.utils import configure_threads, device_description

RESULTS = Path(__file__).with_suffix(".json")

# chapter 07's default parameters (notebooks/07_air.py, parameters cell)
CHAPTER = dict(seed=0, train_scenes=16000, test_scenes=1000, canvas=50, digit_size=20, max_overlap=0.1, epochs=5,
               batch_size=64, lr=1e-3, max_steps=3, z_what=50, hidden=256, features=256, pres_prior=0.01,
               where_init_logvar=-7.0, num_classes=10, dair_class_estimator="exact", dair_marginal_weight=30.0)
QUICK = dict(train_scenes=128, test_scenes=64, epochs=1, batch_size=32, z_what=8, hidden=32, features=32)

# setting -> (what it changes of the chapter's AIR, its overrides)
SETTINGS = {
    "baseline": ("the chapter's AIR: clamped Bernoulli, 20 px window, z_what 50, lr 1e-3", {}),
    "gauss_0.2": ("Gaussian likelihood, σ² = 0.2 (thesis), no clamp", {"likelihood": "gaussian", "sigma2": 0.2}),
    "gauss_0.09": ("Gaussian likelihood, σ = 0.3 (pyro, addtt), no clamp",
                   {"likelihood": "gaussian", "sigma2": 0.09}),
    "gauss_0.054": ("Gaussian likelihood, σ² = 0.054: an uncovered ink pixel costs 9.2 nats, as under the clamp, "
                    "but covering it twice costs as much", {"likelihood": "gaussian", "sigma2": 0.054}),
    "margin_28": ("window 28 px on 20 px digits (scale prior 50/28)", {"window": 28}),
    "margin_24": ("window 24 px on 20 px digits (scale prior 50/24)", {"window": 24}),
    "zwhat_10": ("z_what 10 (thesis)", {"z_what": 10}),
    "gauss_0.2_margin_28": ("Gaussian σ² = 0.2 and window 28 px", {"likelihood": "gaussian", "sigma2": 0.2,
                                                                   "window": 28}),
    "pres_init_0": ("q(z_pres) starts at 0.5 per step (logit 0) instead of 0.88 (logit 2, the thesis's)",
                    {"pres_init_logit": 0.0}),
    "difference_pres_init_0": ("not vanilla AIR: Difference-AIR with q(z_pres) starting at 0.5 (a side-effect "
                               "check of the patch)", {"inference": "difference", "pres_init_logit": 0.0}),
    "lr_3e-4": ("Adam lr 3e-4 instead of 1e-3", {"lr": 3e-4}),
    "baseline_2x": ("the chapter's AIR, twice the steps (10 epochs)", {"epochs": 10}),
    "gauss_0.2_2x": ("Gaussian σ² = 0.2, twice the steps (10 epochs)", {"likelihood": "gaussian", "sigma2": 0.2,
                                                                        "epochs": 10}),
    "pres_init_0_4ep": ("the new default (logit 0) at 4 epochs = 1,000 steps (a first shrunk budget)",
                        {"pres_init_logit": 0.0, "epochs": 4}),
    "pres_init_0_15k": ("the chapter's default since: logit 0, 4 epochs of 15,000 scenes = 940 steps",
                        {"pres_init_logit": 0.0, "epochs": 4, "train_scenes": 15000}),
    "dair_pres_init_0_15k": ("not vanilla AIR: DAIR at the chapter's default (logit 0, 940 steps of 15,000 scenes)",
                             {"what": "prototypes", "pres_init_logit": 0.0, "epochs": 4, "train_scenes": 15000}),
    "dair_pres_init_2_15k": ("not vanilla AIR: DAIR with the thesis's start (logit 2), 940 steps of 15,000 scenes",
                             {"what": "prototypes", "pres_init_logit": 2.0, "epochs": 4, "train_scenes": 15000}),
    "dair_pres_init_0_4ep": ("not vanilla AIR: DAIR with logit 0 at 4 epochs = 1,000 steps",
                             {"what": "prototypes", "pres_init_logit": 0.0, "epochs": 4}),
}


AIR_FIELDS = {"pres_init_logit", "decoder_bias", "scale_prior_std", "inference", "what", "likelihood"}  # AIRConfig fields a setting may set


def build(p: dict, overrides: dict, device):
    """The model builder of one setting: the chapter's `air()` (notebooks/07_air.py) with the overrides."""
    window = overrides.get("window", p["digit_size"])
    common = dict(image_shape=(1, p["canvas"], p["canvas"]), max_steps=p["max_steps"],
                  z_what=overrides.get("z_what", p["z_what"]), hidden=p["hidden"], features=p["features"],
                  pres_prior=p["pres_prior"], scale_prior=p["canvas"] / window, num_classes=p["num_classes"],
                  class_estimator=p["dair_class_estimator"], class_marginal_weight=p["dair_marginal_weight"],
                  where_init_logvar=p["where_init_logvar"], window=window)
    common.update({k: v for k, v in overrides.items() if k in AIR_FIELDS})
    if "sigma2" in overrides:  # the Gaussian likelihood's pixel variance (AIRConfig.pixel_var)
        common["pixel_var"] = overrides["sigma2"]
    cfg = AIRConfig(**common)
    return lambda: AIR(cfg).to(device)


@torch.no_grad()
def expected_counts(model, scene_set: scenes.SceneSet) -> dict:
    """E_q[n] and the mean most probable count per true count, on the same binarization as the scoring."""
    x = scene_set.images.fixed_binarization(0).x
    model.eval()
    probs = torch.cat([model.count_posterior(model.infer(xb, mode=True)).probs for xb in x.split(500)])
    n = torch.arange(probs.shape[-1], dtype=probs.dtype)
    mean, mode = (probs * n).sum(-1), probs.argmax(-1).to(probs.dtype)
    truth = scene_set.counts.cpu()
    out = {}
    for k in truth.unique().tolist():
        out[f"expected_count_{k}"] = float(mean[truth == k].mean())
        out[f"mode_count_{k}"] = float(mode[truth == k].mean())
    # the first step on one-digit scenes: does its window sit on the digit, and does its object draw the digit?
    one = (truth == 1).nonzero().squeeze(-1)
    if len(one):
        from torchvision.ops import box_iou

        inf = model.infer(x[one], mode=True)
        boxes, true = model.boxes(inf.where[:, 0]).float(), scene_set.boxes[one, 0].cpu().float()
        out["first_window_iou_1"] = float(box_iou(boxes, true).diagonal().mean())
        out["first_object_ink_ratio_1"] = float(inf.objects[:, 0].sum((1, 2, 3)).mean() / x[one].sum((1, 2, 3)).mean())
    return out


@torch.no_grad()
def probe(model, scene_set: scenes.SceneSet, label: str) -> None:
    """Print, per true count 1 and 2, q(n), log p(x | the first n objects), each step's KL, window size, the
    IoU between the steps' windows and of each step's window with its best true digit, and each object's
    drawn mass against the scene's ink (the numbers of the .md's mechanism paragraph)."""
    from torchvision.ops import box_iou

    x = scene_set.images.fixed_binarization(0).x
    inf = model.infer(x, mode=True)
    q, (log_px, _) = model.count_posterior(inf).probs, model.count_costs(x, inf)
    boxes, truth = model.boxes(inf.where).float(), scene_set.counts.cpu()
    for k in (1, 2):
        sel = (truth == k).nonzero().squeeze(-1)
        b, tb = boxes[sel], scene_set.boxes[sel, :k].float()
        pair = [float(torch.stack([box_iou(b[i, a:a + 1], b[i, c:c + 1])[0, 0] for i in range(len(sel))]).mean())
                for a, c in ((0, 1), (0, 2), (1, 2))]
        best = [float(torch.stack([box_iou(b[i, j:j + 1], tb[i])[0].max() for i in range(len(sel))]).mean())
                for j in range(3)]
        r = lambda v: [round(float(u), 2) for u in v]  # noqa: E731
        print(f"{label}, {k}-digit scenes: q(n) {r(q[sel].mean(0))}; log p(x | n objects) {r(log_px[sel].mean(0))}; "
              f"KL per step {r(inf.kl[sel].mean(0))}; window px {r((scene_set.spec.canvas / inf.where[sel, :, 0]).mean(0))}; "
              f"IoU steps (1,2),(1,3),(2,3) {r(pair)}; best IoU with a digit per step {r(best)}; object mass per "
              f"step {r(inf.objects[sel].sum((2, 3, 4)).mean(0))} of {float(x[sel].sum((1, 2, 3)).mean()):.1f} ink")


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["baseline"], choices=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--quick", action="store_true", help="tiny data and networks, a throwaway cache")
    parser.add_argument("--table", action="store_true", help="print the markdown table of the stored results")
    parser.add_argument("--probe", action="store_true", help="print the mechanism probe of each setting and seed "
                        "(trained or loaded from the cache) instead of storing scores")
    args = parser.parse_args()
    if args.table:
        print(table(load_results()))
        return
    configure_threads()
    device = torch.device("cpu")
    p = {**CHAPTER, **(QUICK if args.quick else {})}
    if args.quick:
        os.environ["C2F_CACHE"] = tempfile.mkdtemp(prefix="air-counting-")
    spec = dict(canvas=p["canvas"], digit_size=p["digit_size"], max_overlap=p["max_overlap"])
    seed = p["seed"]
    train = scenes.load(scenes.SceneSpec(split="train", n=p["train_scenes"], seed=seed, **spec), device=device)
    test = scenes.load(scenes.SceneSpec(split="test", n=p["test_scenes"], seed=seed + 1, **spec), device=device)
    test3 = scenes.load(scenes.SceneSpec(split="test", n=p["test_scenes"], counts=(3,), seed=seed + 2, **spec),
                        device=device)

    def score(model, s):  # the chapter's scoring (score() in notebooks/07_air.py) without the IW NLL
        out = scenes.evaluate_scenes(model, test, seed=0)
        out["three/count_accuracy"] = scenes.evaluate_scenes(model, test3, seed=0)["count_accuracy"]
        out.update(expected_counts(model, test))
        return out

    if args.probe:
        score = lambda model, s: probe(model, test, f"{name} seed {s}") or {"count_accuracy": 0.0}  # noqa: E731
    results = load_results()
    for name in args.settings:
        overrides = SETTINGS[name][1]
        train_cfg = TrainConfig(epochs=overrides.get("epochs", p["epochs"]), batch_size=p["batch_size"],
                                lr=overrides.get("lr", p["lr"]), grad_clip=10.0)
        chapter_air = not overrides
        trial = Trial("air" if chapter_air else name, build(p, overrides, device), train_cfg)
        n_train = overrides.get("train_scenes", p["train_scenes"])
        data = train if n_train == p["train_scenes"] else scenes.load(
            scenes.SceneSpec(split="train", n=n_train, seed=seed, **spec), device=device)
        for s in args.seeds:
            start = time.perf_counter()
            out = run_trials([trial], data.images, seeds=[s], score=score,
                             key="07" if chapter_air else "bench23")[trial.name]
            if args.probe:
                continue
            run = out.runs[0]
            h = out.history["steps"]
            curve = {int(st): float(c) for st, c in zip(h["step"], h["count"]) if int(st) % 250 == 0}
            entry = {"seed": s, "steps": int(h["step"][-1]), "train_s": out.train_seconds[0],
                     "wall_s": time.perf_counter() - start, "count_curve": curve,
                     "device": device_description(device), "machine": platform.node(),
                     **{k: v for k, v in run.items() if isinstance(v, (int, float))}}
            print(f"{name} seed {s}: count accuracy {100 * run['count_accuracy']:.1f} % (per count "
                  + ", ".join(f"{k}: {100 * run[f'count_accuracy_{k}']:.0f} %" for k in range(3)
                              if f"count_accuracy_{k}" in run)
                  + "), E[n] per count " + ", ".join(f"{run[f'expected_count_{k}']:.2f}" for k in range(3)
                                                    if f"expected_count_{k}" in run)
                  + f", recall {100 * run['recall']:.1f} %, 3 digits {100 * run['three/count_accuracy']:.1f} %, "
                  f"{entry['train_s']:.0f} s training", flush=True)
            if not args.quick:
                results.setdefault(name, {})[str(s)] = entry
                RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True))
    if args.quick:
        print("quick check done (nothing stored)")


def table(results: dict) -> str:
    """One row per setting: seeds, steps, count accuracy mean ± std (worst seed), per-count accuracy and
    E[n], recall, 3-digit accuracy, training seconds per run."""
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    rows = ["| setting | what changes | seeds | steps | count accuracy % (mean ± std) | worst seed % | per seed % "
            "| acc. by true count 0/1/2 % | E[n] by true count 0/1/2 | recall % | 3 digits % "
            "| 1-digit scenes: step 1's IoU / ink share | train s/run |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, (what, _) in SETTINGS.items():
        if name not in results:
            continue
        runs = [results[name][s] for s in sorted(results[name], key=int)]
        acc = [r["count_accuracy"] for r in runs]
        sd = f" ± {pct(statistics.stdev(acc))}" if len(acc) > 1 else ""
        mean = lambda k: sum(r[k] for r in runs) / len(runs)  # noqa: E731
        rows.append(
            f"| {name} | {what} | {', '.join(str(r['seed']) for r in runs)} | {runs[0]['steps']} "
            f"| {pct(mean('count_accuracy'))}{sd} | {pct(min(acc))} | {' / '.join(pct(a) for a in acc)} "
            f"| {' / '.join(pct(mean(f'count_accuracy_{k}')) for k in range(3))} "
            f"| {' / '.join(format(mean(f'expected_count_{k}'), '.2f') for k in range(3))} "
            f"| {pct(mean('recall'))} | {pct(mean('three/count_accuracy'))} "
            f"| {mean('first_window_iou_1'):.2f} / {mean('first_object_ink_ratio_1'):.2f} | {mean('train_s'):.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
