"""The basis of the `gpu` profiles' sizing: per training step of each model, the ops dispatched and the FLOPs,
counted on the CPU, and the H100 rate they imply; per image and importance sample, the FLOPs of the IW bound.

    python benchmarks/gpu_sizing.py

Estimate (stated, conservative): a step costs 15 µs per dispatched op (eager PyTorch: Python, dispatcher and
kernel launch; typically 5–10 µs on a fast host) + 0.3 ms of host syncs + its FLOPs at 50 TFLOP/s (5 % of
an H100's dense bf16 peak: small batches); the IW evaluation runs in float32 at 25 TFLOP/s. A step is the
book's: ``c2f.train``'s optimizer (fused Adam: one kernel for all parameters) and gradient-norm guard.
Models use the architectures of the `gpu` profiles. For chapter 02's models the last column also gives the IW
FLOPs of all prefixes together (``prefix_log_importance_weights``: one pass scores every prefix), in brackets.
Not a test.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from c2f.book.chapters import declared_parameters, resolve_parameters
from c2f.models.factory import (AIR_KINDS, HIERARCHY_KINDS, PIXEL_KINDS, SYNTHESIS_FAMILIES, air_model,
                                dvae_model, hierarchy_model, pixelvae_model, progressive_model,
                                synthesis_model, vae_model)
from c2f.train import TrainConfig, clip_gradients, make_optimizer

US_PER_OP, SYNC_MS, TRAIN_FLOPS, EVAL_FLOPS = 15.0, 0.3, 50e12, 25e12


class _CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


def models() -> dict:
    """Chapters 01, 02, 05, 06 and 07 as their factories build them from their `gpu` profiles' parameters;
    chapters 04 and 08 as their own factories build them from their declared parameters (which their gpu
    profiles keep)."""
    p01, p02 = resolve_parameters("01_vae", "gpu"), resolve_parameters("02_progressive", "gpu")
    out = {f"01 vae_{arch}": (lambda arch=arch: vae_model(arch, p01)) for arch in ("mlp", "conv")}
    for name in ("standard", "single", "single_steps", "multiple_combined", "rnn", "rnn_nor", "quotient"):
        out[f"02 {name}"] = lambda name=name: progressive_model(name, p02)
    p04 = declared_parameters("04_hierarchical")
    for kind in HIERARCHY_KINDS:
        out[f"04 {kind}"] = lambda kind=kind: hierarchy_model(kind, p04)
    out["04 lvae no batch norm"] = lambda: hierarchy_model("lvae", p04, batch_norm=False)
    p05 = resolve_parameters("05_discrete", "gpu")
    for estimator in ("exact", "reinforce", "nvil", "concrete", "rebar", "relax"):
        out[f"05 dvae_st {estimator}"] = lambda e=estimator: dvae_model("dvae_st", p05, num_classes=10, estimator=e)
    p06 = resolve_parameters("06_pixelvae", "gpu")
    out.update({f"06 {kind}": (lambda kind=kind: pixelvae_model(kind, p06)) for kind in PIXEL_KINDS})
    p07 = resolve_parameters("07_air", "gpu")  # chapter 07: 50 x 50 scenes, batch 256
    for kind in AIR_KINDS:
        out[f"07 {kind}"] = lambda kind=kind: air_model(kind, p07)
    out["07 air_nvil"] = lambda: air_model("air", p07, count_estimator="nvil")
    p08 = declared_parameters("08_synthesis")
    out.update({f"08 {f}": (lambda f=f: synthesis_model(f, p08)) for f in SYNTHESIS_FAMILIES})
    return out


BATCH = {"07": 256}  # chapter 07's gpu profile; the others use 128


def count(model, batch_size: int = 128) -> tuple[int, float, float | None, float | None]:
    """(ops per training step, FLOPs per training step, FLOPs per image-sample of the IW bound (None where the
    FLOP counter cannot follow it), and of the IW bound of all prefixes together for a model that has them,
    else None)."""
    if hasattr(model, "set_stage"):  # stage-wise models: the last (largest) stage
        model.set_stage(getattr(model, "num_stages", None) or model.num_groups)
    opt = make_optimizer(model.parameters(), TrainConfig())
    x = torch.bernoulli(torch.full((batch_size, *getattr(model.cfg, "image_shape", (1, 28, 28))), 0.15))
    parts = int(getattr(model, "steps_per_batch", 1))

    def step():
        for part in range(parts):
            loss, _ = model.loss(x, **({"part": part} if parts > 1 else {}))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradients(model, 0.0)  # as c2f.train.fit does
            opt.step()

    step()  # creates the optimizer state
    with _CountOps() as ops:
        step()
    with FlopCounterMode(display=False) as train_flops:
        step()
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as iw_flops:
            model.log_importance_weights(x[:20], 50)
        iw = iw_flops.get_total_flops() / 1000
    except AssertionError:  # the counter's module tracker rejects a no-grad view of a parameter (Conv-DRAW's state)
        iw = None
    prefix = None
    if hasattr(model, "prefix_log_importance_weights"):
        with torch.no_grad(), FlopCounterMode(display=False) as prefix_flops:
            model.prefix_log_importance_weights(x[:20], 50)
        prefix = prefix_flops.get_total_flops() / 1000
    return ops.n, train_flops.get_total_flops(), iw, prefix


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'model':22s} {'ops/step':>9s} {'GFLOP/step':>11s} {'H100 steps/s (est.)':>20s} {'IW MFLOP/(image·K)':>19s}")
    for name, build in models().items():
        torch.manual_seed(0)
        ops, flops, iw, prefix = count(build(), BATCH.get(name[:2], 128))
        ms = ops * US_PER_OP / 1000 + SYNC_MS + flops / TRAIN_FLOPS * 1000
        iw_text = "n/a" if iw is None else f"{iw / 1e6:.2f}"
        print(f"{name:22s} {ops:9d} {flops / 1e9:11.2f} {1000 / ms:20.0f} {iw_text:>19s}"
              + (f" ({prefix / 1e6:.2f} all prefixes)" if prefix is not None else ""), flush=True)


if __name__ == "__main__":
    main()
