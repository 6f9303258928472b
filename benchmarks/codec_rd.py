"""Chapter 03's learned codec: how far more training moves it (issue 25), as short, decisive runs.

``train``: the default profile's grey-level Conv-DRAW (T = 6, 16 channels, 2 × 7 × 7 latents per iteration)
trained on 2,000 random MNIST training images (batch 32, lr 2e-3) for up to `--steps` steps; at each checkpoint
the PSNR of the posterior-mean reconstruction (all T iterations, no quantisation: the ceiling of the codec's
curve) and the test ELBO on 100 test images. Writes benchmarks/codec_rd.json (merged) and the last weights to
``--save``. ``rd``: the rate-distortion points and BD-rates of the codec of a saved model (see c2f.codec).

    PYTHONPATH=. C2F_THREADS=1 python benchmarks/codec_rd.py train --steps 2400 --save /tmp/h03/grey.pt
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from c2f import codec
from c2f.data import batches
from c2f.experiment import splits
from c2f.models.factory import convdraw_model

OUT = Path(__file__).with_suffix(".json")
CHAPTER_03 = dict(iterations=6, hidden=16, latent_channels=2, read_channels=16, kernel=3)  # its default profile


def merge(key: str, value) -> None:
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[key] = value
    OUT.write_text(json.dumps(data, indent=1))


def grey(train_size: int, test_size: int, seed: int = 0):
    return splits("mnist", device="cpu", train_size=train_size, test_size=test_size, binarize="none",
                  parts=("train", "test"), bits=8, subset_seed=seed)


@torch.no_grad()
def ceiling(model, x) -> dict:
    model.eval()
    rec = model.reconstruct(x)
    out = codec.distortion(codec.to_uint8(x), codec.to_uint8(rec))
    terms = model.elbo_terms(x)
    model.train()
    return {"psnr_posterior_mean": out["psnr"], "test_elbo_nats": -terms.elbo.mean().item(),
            "test_kl_nats": terms.kl.mean().item()}


def train(args) -> None:
    torch.manual_seed(args.seed)
    tr, te = grey(args.train_size, 100, args.seed)
    model = convdraw_model(CHAPTER_03, likelihood="discretized_logistic")
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    marks, rows, step, start = set(args.marks), [], 0, time.perf_counter()
    epoch = 0
    while step < args.steps:
        for x, _ in batches(tr, args.batch_size, seed=args.seed + epoch):
            loss, _ = model.loss(x, kl_weight=args.kl_weight)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
            opt.step()
            step += 1
            if step in marks or step == args.steps:
                rows.append({"step": step, "seconds": time.perf_counter() - start, **ceiling(model, te.x)})
                print(rows[-1], flush=True)
                merge(f"train/{args.tag}", {"config": vars(args), "rows": rows})
                torch.save(model.state_dict(), args.save)
            if step >= args.steps:
                break
        epoch += 1


def rd(args) -> None:
    """The codec of a saved model on `--images` test images of each data set: the learned codec with the
    KL-aware quantiser and with the fixed grid (levels 1, no skipping) at each Δ, every classic codec, the
    BD-rates of the learned codec's best curve (file, payload, mosaic), its rate over its KL and its best PSNR."""
    model = convdraw_model(CHAPTER_03, likelihood="discretized_logistic")
    model.load_state_dict(torch.load(args.model))
    model.eval()
    tr, _ = grey(args.train_size, 1, 0)
    fit_x = tr.x[: args.fit_images]
    rows = {}
    for dataset in args.datasets:
        (te,) = splits(dataset, device="cpu", test_size=args.images, binarize="none", parts=("test",), bits=8,
                       subset_seed=0)
        classic = {c: codec.classic_curve(codec.to_uint8(te.x), c) for c in codec.CLASSIC}
        out = {"classic": {c: [point_row(p) for p in pts] for c, pts in classic.items()}}
        variants = [(f"kl_aware_skip{k}" + ("_levels1" if args.levels == 1 else ""), {"skip_nats": k, "levels": args.levels})
                    for k in args.skips]
        for variant, kw in variants + ([("fixed_grid", {"levels": 1, "skip_nats": 0.0})] if args.fixed else []):
            learned = [p for d in args.deltas if d <= 2 or "skip" in variant
                       for p in codec.model_curve(model, te.x, codec.fit_quantiser(model, fit_x, d, **kw))]
            front = codec.pareto(learned)
            best = front[-1]
            out[variant] = {"points": [point_row(p) for p in learned], "bd_rate": codec.bd_rates(front, classic),
                            "max_psnr": best.psnr, "rate_over_kl_at_best": best.bits / best.extra["kl_bits"],
                            "payload_over_kl_at_best": best.rate("payload")[0] / best.extra["kl_bits"]}
            print(dataset, variant, {k: v for k, v in out[variant].items() if k != "points"}, flush=True)
        rows[dataset] = out
    merge(f"rd/{args.tag}", {"config": vars(args), **rows})


def report(args) -> None:
    """benchmarks/codec_rd.md's tables from the json: the training ceilings, then per run and data set the BD-rates
    (container separated, whole file, mosaic), best PSNR and rate over KL of each quantiser, and the curves."""
    data = json.loads(OUT.read_text())
    lines = ["## Training: the PSNR ceiling (posterior mean, all iterations, no quantisation; 100 test images)", "",
             "| run | step | PSNR (dB) | test ELBO (nats) | test KL (nats) |", "|---|---|---|---|---|"]
    for key, run in data.items():
        if key.startswith("train/"):
            lines += [f"| {key[6:]} | {r['step']} | {r['psnr_posterior_mean']:.2f} | {r['test_elbo_nats']:.1f} | "
                      f"{r['test_kl_nats']:.1f} |" for r in run["rows"]]
    for key, run in data.items():
        if not key.startswith("rd/"):
            continue
        for dataset, out in run.items():
            if dataset == "config":
                continue
            lines += ["", f"## {key[3:]}: {dataset} ({run['config']['images']} test images, seed-0 draw)", "",
                      "| quantiser | max PSNR | rate/KL at best | " + " | ".join(
                          f"BD vs {c} (payload / file / mosaic)" for c in codec.CLASSIC) + " |",
                      "|---|---|---|" + "---|" * len(codec.CLASSIC)]
            for variant, v in out.items():
                if variant == "classic":
                    continue
                bd = " | ".join(" / ".join("–" if not math.isfinite(v["bd_rate"][c][k]) else f"{v['bd_rate'][c][k]:+.0f} %"
                                           for k in ("payload", "file", "mosaic")) for c in codec.CLASSIC)
                lines.append(f"| {variant} | {v['max_psnr']:.2f} | {v['rate_over_kl_at_best']:.2f} | {bd} |")
            lines += ["", "Curves (bytes per image: file / payload / mosaic; PSNR dB; learned: KL bits of what was sent):",
                      "", "| codec | setting | file B | payload B | mosaic B | PSNR | mosaic PSNR | KL bits |",
                      "|---|---|---|---|---|---|---|---|"]
            rows = [(c, p) for c, pts in out["classic"].items() for p in pts]
            rows += [(f"{variant} Δ{p['delta']}", p) for variant, v in out.items() if variant != "classic"
                     for p in v["points"]]
            lines += [f"| {c} | {p['setting']} | {p['bytes']:.1f} | {p['payload_bytes']:.1f} | {p['mosaic_bytes']:.1f} | "
                      f"{p['psnr']:.2f} | {p['mosaic_psnr']:.2f} | "
                      + ("" if p.get("kl_bits") is None else f"{p['kl_bits']:.1f}") + " |" for c, p in rows]
    head = Path(__file__).with_name("codec_rd_head.md").read_text() if Path(__file__).with_name("codec_rd_head.md").exists() else ""
    Path(__file__).with_suffix(".md").write_text(head + "\n".join(lines) + "\n")


def point_row(p) -> dict:
    return {"setting": p.setting, "delta": (p.extra or {}).get("delta"), "bytes": p.bytes,
            "payload_bytes": p.payload_bytes, "mosaic_bytes": p.mosaic_bytes, "psnr": p.psnr,
            "mosaic_psnr": p.mosaic_psnr, "kl_bits": (p.extra or {}).get("kl_bits")}


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--steps", type=int, default=2400)
    t.add_argument("--marks", type=int, nargs="*", default=[189, 400, 800, 1200, 1800, 2400, 3600, 4800])
    t.add_argument("--train-size", type=int, default=2000)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--kl-weight", type=float, default=1.0)
    t.add_argument("--tag", default="default")
    t.add_argument("--save", default="/tmp/h03/grey.pt")
    sub.add_parser("report")
    r = sub.add_parser("rd")
    r.add_argument("--model", default="/tmp/h03/grey.pt")
    r.add_argument("--images", type=int, default=100)
    r.add_argument("--fit-images", type=int, default=500)
    r.add_argument("--train-size", type=int, default=2000)
    r.add_argument("--deltas", type=float, nargs="*", default=[0.5, 1.0, 2.0])
    r.add_argument("--datasets", nargs="*", default=["mnist", "fashion_mnist"])
    r.add_argument("--skips", type=float, nargs="*", default=[0.05], help="skip_nats of the KL-aware quantisers")
    r.add_argument("--fixed", type=int, default=1, help="1: the fixed grid too")
    r.add_argument("--levels", type=int, default=6, help="grid levels of the KL-aware quantisers (1: Δ σ_p)")
    r.add_argument("--tag", default="default")
    args = p.parse_args()
    {"train": train, "rd": rd, "report": report}[args.cmd](args)
