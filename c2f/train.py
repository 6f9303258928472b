"""One training loop for every model, driven by the model's own ``loss`` method.

A model only has to provide ``loss(x, kl_weight=..., free_bits=...) -> (loss, {name: scalar})``. A model
whose objective is optimised in several steps per minibatch (e.g. one per latent group) says so with an
attribute ``steps_per_batch`` = n > 1; its loss then takes ``part=0..n-1`` and the loop steps after each
part, logging the scalars of the last. The loop adds what every run needs: the optimizer and learning-rate
schedule from :class:`TrainConfig`, KL warm-up, gradient clipping, bf16 autocast on CUDA, a progress bar
with the live loss, a guard that stops on a non-finite loss, and an atomic checkpoint after every epoch from
which a killed run resumes and ends with the same numbers as an uninterrupted one.

:func:`train_or_load` wraps the loop in a cache: a model is stored under a key derived from its
configuration, the training configuration, the data and the seed, so a chapter re-run with the same
parameters loads the trained model instead of training again.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from c2f.data import ImageSet, batches
from c2f.utils import atomic_torch_save, stable_hash

CACHE_VERSION = 1  # bump when a code change makes cached checkpoints wrong


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamax | adamw
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | cosine (per step, down to lr * final_lr_fraction)
    final_lr_fraction: float = 0.0
    kl_warmup_epochs: float = 0.0  # linear KL weight 0 -> 1 over this many epochs
    free_bits: float = 0.0  # nats per latent dimension (or group) below which KL is not penalised
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    amp: bool = True  # bf16 autocast, used on CUDA only
    compile: bool = False  # torch.compile the loss, used on CUDA only
    seed: int = 0
    log_every: int = 50  # steps per point of the step-level training curve


# --- objective helpers shared by the models -------------------------------------------------------------


def kl_penalty(kl: torch.Tensor, free_bits: float = 0.0) -> torch.Tensor:
    """The KL term to minimise from per-example KLs of shape [B, J] (J latent dimensions or groups).

    With free bits λ > 0 (Kingma et al. 2016) each of the J terms is averaged over the batch and only the
    part above λ is penalised: Σ_j max(λ, E_batch KL_j). With λ = 0 this is the plain batch-mean KL.
    """
    per_unit = kl.mean(0)
    if free_bits > 0:
        per_unit = per_unit.clamp(min=free_bits)
    return per_unit.sum()


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up: 0 at step 0, 1 from `warmup_steps` on (always 1 without warm-up)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, step / warmup_steps)


# --- the loop -------------------------------------------------------------------------------------------


def _optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax, "adamw": torch.optim.AdamW}
    if cfg.optimizer not in kinds:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}; choose one of {sorted(kinds)}")
    return kinds[cfg.optimizer](params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(opt, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps, eta_min=cfg.lr * cfg.final_lr_fraction)
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose 'constant' or 'cosine'")


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def fit(
    model: nn.Module,
    data: ImageSet,
    cfg: TrainConfig,
    *,
    checkpoint: str | Path | None = None,
    valid: ImageSet | None = None,
    desc: str = "train",
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train `model` on `data`; return the history.

    The history has ``steps`` (scalars averaged over every `log_every` steps) and ``epochs`` (means per
    epoch, the wall time ``time_s`` of its training steps, and the validation ELBO when `valid` is given). With `checkpoint`, training resumes from that
    file when it exists and writes it atomically after every epoch.
    """
    device = next(model.parameters()).device
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    parts = int(getattr(model, "steps_per_batch", 1))
    opt = _optimizer(model.parameters(), cfg)
    sched = _scheduler(opt, cfg, total * parts)
    history: dict = {"steps": {}, "epochs": {}}
    start = 0
    if checkpoint is not None and Path(checkpoint).exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None:
            sched.load_state_dict(state["scheduler"])
        history, start = state["history"], state["epoch"]
        if start < cfg.epochs:
            print(f"{desc}: resuming after epoch {start} of {cfg.epochs} from {Path(checkpoint).name}")

    use_cuda = device.type == "cuda"
    loss_fn = torch.compile(model.loss) if (cfg.compile and use_cuda) else model.loss
    warmup_steps = int(cfg.kl_warmup_epochs * steps_per_epoch)
    bar = tqdm(total=total, initial=start * steps_per_epoch, desc=desc, unit="step")
    for epoch in range(start, cfg.epochs):
        started = time.perf_counter()
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))
        model.train()
        sums: dict[str, float] = {}
        window: dict[str, float] = {}
        for i, (x, _) in enumerate(batches(data, cfg.batch_size, seed=_epoch_seed(cfg.seed, epoch))):
            step = epoch * steps_per_epoch + i
            for part in range(parts):
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp and use_cuda):
                    loss, scalars = loss_fn(x, kl_weight=kl_weight(step, warmup_steps), free_bits=cfg.free_bits,
                                            **({"part": part} if parts > 1 else {}))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(model.parameters(),
                                                     cfg.grad_clip if cfg.grad_clip > 0 else math.inf)
                if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
                    bar.close()
                    what = f"the loss became {loss.item()}" if not torch.isfinite(loss) else \
                        f"the gradient norm became {grad_norm.item()}"
                    kept = f"the last good checkpoint (after epoch {epoch}) is kept at {checkpoint}" if (
                        checkpoint and Path(checkpoint).exists()) else "no checkpoint was written yet"
                    raise TrainingDiverged(
                        f"{desc}: {what} at epoch {epoch + 1}, step {step}; {kept}. "
                        f"Try a lower learning rate (lr={cfg.lr}), gradient clipping or KL warm-up.")
                opt.step()
                if sched is not None:
                    sched.step()
            values = {"loss": loss.item(), **{k: float(v.detach()) for k, v in scalars.items()}}
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
                window[k] = window.get(k, 0.0) + v
            if (i + 1) % cfg.log_every == 0 or i + 1 == steps_per_epoch:
                n = (i % cfg.log_every) + 1
                _append(history["steps"], {"step": step + 1, **{k: v / n for k, v in window.items()}})
                window = {}
            bar.update()
            bar.set_postfix(epoch=epoch + 1, loss=f"{values['loss']:.2f}", refresh=False)
        summary = {"epoch": epoch + 1, **{k: v / steps_per_epoch for k, v in sums.items()},
                   "time_s": time.perf_counter() - started}  # training only, without the validation
        if valid is not None:
            from c2f.evaluate import elbo

            summary["valid_elbo"] = elbo(model, valid, batch_size=max(cfg.batch_size, 500))
        _append(history["epochs"], summary)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, opt, sched, epoch + 1, history, complete=epoch + 1 == cfg.epochs)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, summary)
    bar.close()
    model.eval()
    return history


def _append(columns: dict, row: dict) -> None:
    for k, v in row.items():
        columns.setdefault(k, []).append(v)


def save_checkpoint(path, model, opt, sched, epoch: int, history: dict, complete: bool) -> None:
    """Write everything needed to resume (or reuse) a run, atomically."""
    atomic_torch_save({
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": None if sched is None else sched.state_dict(),
        "epoch": epoch,
        "history": history,
        "complete": complete,
    }, path)


# --- the checkpoint cache -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where trained models are cached: ``$C2F_CACHE`` or ``~/.cache/c2f/checkpoints``."""
    return Path(os.environ.get("C2F_CACHE") or Path.home() / ".cache" / "c2f" / "checkpoints").expanduser()


def cache_key(name: str, model: nn.Module, data: ImageSet, cfg: TrainConfig, valid: ImageSet | None) -> str:
    """A key that changes whenever the model, its training, its data or its seed does."""
    model_cfg = asdict(model.cfg) if is_dataclass(getattr(model, "cfg", None)) else repr(model)
    return stable_hash({
        "version": CACHE_VERSION, "name": name, "class": type(model).__qualname__, "model": model_cfg,
        "train": asdict(cfg), "data": data.spec, "valid": None if valid is None else valid.spec,
    })


def train_or_load(
    model: nn.Module,
    data: ImageSet,
    cfg: TrainConfig,
    *,
    name: str,
    valid: ImageSet | None = None,
    retrain: bool = False,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train `model` (in place) unless a finished run with the same key is cached; return its history.

    An unfinished cached run is resumed. `retrain` discards any cached run and trains from scratch.
    """
    path = cache_dir() / f"{name}-{cache_key(name, model, data, cfg, valid)}.pt"
    if retrain and path.exists():
        path.unlink()
    device = next(model.parameters()).device
    if path.exists():
        state = torch.load(path, map_location=device, weights_only=True)
        if state["complete"]:
            model.load_state_dict(state["model"])
            model.eval()
            print(f"{name}: loaded the cached model trained for {state['epoch']} epochs ({path.name})")
            return state["history"]
    return fit(model, data, cfg, checkpoint=path, valid=valid, desc=name, on_epoch_end=on_epoch_end)


def train_stages(
    model: nn.Module,
    data: ImageSet,
    cfg: TrainConfig,
    *,
    name: str,
    valid: ImageSet | None = None,
    retrain: bool = False,
) -> list[dict]:
    """Train a model stage by stage: for s = 1..``model.num_stages`` (or its ``num_groups``), call
    ``model.set_stage(s)`` (which freezes what earlier stages trained) and then :func:`train_or_load` once,
    cached as ``<name>-stage<s>``. Returns the history of each stage."""
    stages = getattr(model, "num_stages", None) or model.num_groups
    histories = []
    for s in range(1, stages + 1):
        model.set_stage(s)
        histories.append(train_or_load(model, data, cfg, name=f"{name}-stage{s}", valid=valid, retrain=retrain))
    return histories
