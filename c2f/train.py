"""One training loop for every model, driven by the model's own ``loss`` method.

A model only has to provide ``loss(x, kl_weight=..., free_bits=...) -> (loss, {name: scalar})`` (the
:class:`c2f.objectives.Trainable` protocol). A model whose objective is optimised in several steps per
minibatch (e.g. one per latent group) says so with an attribute ``steps_per_batch`` = n > 1; its loss then
takes ``part=0..n-1`` and the loop steps after each part, logging the scalars of the last. A supervised
model (``uses_labels``) also gets the minibatch's labels as ``y``. The loop adds what every run needs: the
optimizer and learning-rate schedule from :class:`TrainConfig`, KL warm-up, gradient clipping, bf16
autocast on CUDA, a progress bar with the loss, a guard that stops on a non-finite loss or gradient, and an
atomic checkpoint after every epoch from which a killed run resumes and ends with the same numbers as an
uninterrupted one.

The loop does not wait for the device at every step: the logged scalars and the guard's record of the
first non-finite step stay on the device and come to the host once per logging window (`log_every`
steps, :data:`LOG_EVERY` by default, and at the end of each epoch). That is when the guard looks and the progress bar's loss changes; a
checkpoint is written only after that check, so no non-finite update ever reaches one.

:func:`train_or_load` wraps the loop in a cache: a model is stored under a key derived from its
configuration, the training configuration, the data and the seed, so a chapter re-run with the same
parameters loads the trained model instead of training again. A cached checkpoint that cannot be used
(truncated, or written by another version) is moved aside, with a message naming it, and the model trained
again.
"""

from __future__ import annotations

import contextlib
import copy
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
from c2f.objectives import kl_weight
from c2f.utils import atomic_torch_save, report, stable_hash

PROGRESS_EVERY = 10.0  # seconds between progress lines of a run (c2f.book.runner shows them on the console)
CACHE_VERSION = 2  # bump when a code change makes cached checkpoints wrong (2: fused Adam, rand < p binarization)
LOG_EVERY = 50  # steps per logging window: a point of the step-level training curve, one wait for the device


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3  # Adam's (fused where the device allows)
    schedule: str = "constant"  # constant | cosine (per step, down to 0)
    kl_warmup_epochs: float = 0.0  # linear KL weight 0 -> 1 over this many epochs
    free_bits: float = 0.0  # nats per latent dimension (or group) below which KL is not penalised
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    seed: int = 0


# the fields TrainConfig had before issue 22, at the values every run used: part of the cache key, so that the
# models cached before stay valid (drop them at the next CACHE_VERSION)
_RETIRED_FIELDS = {"optimizer": "adam", "weight_decay": 0.0, "final_lr_fraction": 0.0, "amp": True,
                   "compile": False, "log_every": 50}


# --- the loop -------------------------------------------------------------------------------------------


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with the learning rate of `cfg`, with PyTorch's fused kernel where the parameters' device has it
    (one pass over all parameters instead of a dozen elementwise ops per tensor: about a quarter of the MLP
    VAE's CPU step time)."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, lr=cfg.lr, **({"fused": True} if fused else {}))


def _scheduler(opt, cfg: TrainConfig, total_steps: int):
    if cfg.schedule == "constant":
        return None
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps)
    raise ValueError(f"unknown schedule {cfg.schedule!r}; choose 'constant' or 'cosine'")


def clip_gradients(model: nn.Module, clip: float) -> torch.Tensor:
    """The gradients' total norm (for the divergence guard), after clipping them to `clip` when it is > 0."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = nn.utils.get_total_norm(grads)
    if clip > 0:
        nn.utils.clip_grads_with_norm_(model.parameters(), clip, norm)
    return norm


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
    log_every: int = LOG_EVERY,
) -> dict:
    """Train `model` on `data`; return the history.

    The history has ``steps`` (scalars averaged over every `log_every` steps) and ``epochs`` (means per
    epoch, the wall time ``time_s`` of its training steps, and the validation ELBO when `valid` is given). With `checkpoint`, training resumes from that
    file when it exists (one that cannot be read is moved aside, see :func:`load_checkpoint`) and writes it
    atomically after every epoch. A non-finite loss or gradient raises :class:`TrainingDiverged` at the end
    of its logging window, naming the step; the checkpoint then still holds the last good epoch, while the
    model in memory may already hold the non-finite update.
    """
    device = next(model.parameters()).device
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    parts = int(getattr(model, "steps_per_batch", 1))
    opt = make_optimizer(model.parameters(), cfg)
    sched = _scheduler(opt, cfg, total * parts)
    history: dict = {"steps": {}, "epochs": {}}
    start = 0
    state = None if checkpoint is None else load_checkpoint(checkpoint, model, opt, sched, desc=desc)
    if state is not None:
        history, start = state["history"], state["epoch"]
        if start < cfg.epochs:
            print(f"{desc}: resuming after epoch {start} of {cfg.epochs} from {Path(checkpoint).name}")
            report(f"{desc}: resuming after epoch {start} of {cfg.epochs}")

    use_cuda = device.type == "cuda"  # bf16 autocast on CUDA only
    warmup_steps = int(cfg.kl_warmup_epochs * steps_per_epoch)
    t0 = last_report = time.perf_counter()
    # a run of the runner reports to the console instead; otherwise tqdm's own default (and $TQDM_DISABLE) hold
    quiet = {"disable": True} if os.environ.get("C2F_PROGRESS") else {}
    with tqdm(total=total, initial=start * steps_per_epoch, desc=desc, unit="step", **quiet) as bar:
        for epoch in range(start, cfg.epochs):
            started = time.perf_counter()
            torch.manual_seed(_epoch_seed(cfg.seed, epoch))
            model.train()
            log = _DeviceLog(device, f"{desc}: ", epoch, cfg, checkpoint)
            with log.guard():
                for i, (x, y) in enumerate(batches(data, cfg.batch_size, seed=_epoch_seed(cfg.seed, epoch))):
                    step = epoch * steps_per_epoch + i
                    labels = {"y": y} if getattr(model, "uses_labels", False) else {}  # objectives.Supervised
                    for part in range(parts):
                        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_cuda):
                            loss, scalars = model.loss(x, kl_weight=kl_weight(step, warmup_steps),
                                                       free_bits=cfg.free_bits, **labels,
                                                       **({"part": part} if parts > 1 else {}))
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        grad_norm = clip_gradients(model, cfg.grad_clip)
                        log.check(step, loss, grad_norm)
                        opt.step()
                        if sched is not None:
                            sched.step()
                    log.add(step, loss, scalars)
                    if (i + 1) % log_every == 0 or i + 1 == steps_per_epoch:
                        means = log.sync(epoch_end=i + 1 == steps_per_epoch)
                        _append(history["steps"], {"step": step + 1, **means})
                        bar.set_postfix(epoch=epoch + 1, loss=f"{means['loss']:.2f}", refresh=False)
                        if time.perf_counter() - last_report >= PROGRESS_EVERY or i + 1 == steps_per_epoch:
                            last_report = time.perf_counter()
                            report(f"{desc}: epoch {epoch + 1}/{cfg.epochs}, step {step + 1}/{total}, "
                                   f"loss {means['loss']:.2f}, {last_report - t0:.0f} s")
                    bar.update()
            summary = {"epoch": epoch + 1, **log.epoch_means,
                       "time_s": time.perf_counter() - started}  # training only, without the validation
            if valid is not None:
                from c2f.evaluate import elbo

                summary["valid_elbo"] = elbo(model, valid, batch_size=max(cfg.batch_size, 500))
            _append(history["epochs"], summary)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, opt, sched, epoch + 1, history, complete=epoch + 1 == cfg.epochs)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, summary)
    model.eval()
    print(f"{desc}: {summary_line(history)}")  # the page's one line per trained model
    return history


def summary_line(history: dict) -> str:
    """Steps, epochs, final loss and training time of a history: what a page says of a trained model."""
    epochs = history["epochs"]
    if not epochs.get("epoch"):
        return "trained for 0 steps"
    return (f"{history['steps']['step'][-1]} steps ({epochs['epoch'][-1]} epochs), final loss "
            f"{epochs['loss'][-1]:.2f}, {sum(epochs['time_s']):.0f} s of training")


class _DeviceLog:
    """What the loop logs in one epoch, kept on the device between syncs: the sums of the scalars over the
    logging window and over the epoch (float64 where the device has it, so they equal sums on the host), and
    the NaN guard's record [step, loss, gradient norm] of the epoch's first step whose loss or gradient norm
    was not finite (step −1 while there is none)."""

    def __init__(self, device: torch.device, prefix: str, epoch: int, cfg: TrainConfig, checkpoint):
        self.dtype = torch.float32 if device.type == "mps" else torch.float64
        self.device, self.prefix, self.epoch, self.cfg, self.checkpoint = device, prefix, epoch, cfg, checkpoint
        self.first_bad = torch.tensor([-1.0, 0.0, 0.0], dtype=self.dtype, device=device)
        self.keys: list[str] | None = None
        self.window = self.total = None
        self.in_window = self.in_epoch = 0
        self.step = -1  # the last step added
        self.epoch_means: dict[str, float] = {}

    def check(self, step: int, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Record `step` if it is the first whose loss or gradient norm is not finite (no sync)."""
        loss, grad_norm = loss.detach().to(self.dtype), grad_norm.detach().to(self.dtype)
        new = ~(torch.isfinite(loss) & torch.isfinite(grad_norm)) & (self.first_bad[0] < 0)
        self.first_bad = torch.where(new, torch.stack([torch.full_like(loss, step), loss, grad_norm]), self.first_bad)

    def add(self, step: int, loss: torch.Tensor, scalars: dict) -> None:
        """Add one step's loss and scalars to the sums (no sync)."""
        keys = ["loss", *scalars]
        if self.keys is not None and keys != self.keys:
            raise ValueError(f"{self.prefix}the model's loss logged {keys} after {self.keys}; it must log the same "
                             "scalars at every step")
        self.keys, self.step = keys, step
        values = torch.stack([torch.as_tensor(v).detach().to(self.device, self.dtype).reshape(())
                              for v in (loss, *scalars.values())])
        self.window = values if self.window is None else self.window + values
        self.total = values if self.total is None else self.total + values
        self.in_window, self.in_epoch = self.in_window + 1, self.in_epoch + 1

    def sync(self, epoch_end: bool = False) -> dict[str, float]:
        """The one wait for the device per window: raise :class:`TrainingDiverged` if a step was not finite,
        else return the window's means (and, at the epoch's end, set ``epoch_means``); start a new window."""
        parts = [self.window, self.first_bad] + ([self.total] if epoch_end else [])
        host = torch.cat(parts).tolist()
        k = len(self.keys)
        self._raise_if_diverged(host[k:k + 3])
        means = {key: v / self.in_window for key, v in zip(self.keys, host[:k])}
        if epoch_end:
            self.epoch_means = {key: v / self.in_epoch for key, v in zip(self.keys, host[k + 3:])}
        self.window, self.in_window = None, 0
        return means

    @contextlib.contextmanager
    def guard(self):
        """Report an error raised after a non-finite step (say, a NaN that a distribution rejects) as the
        divergence it is."""
        try:
            yield
        except TrainingDiverged:
            raise
        except Exception as err:
            self._raise_if_diverged(self.first_bad.tolist(), cause=err)
            raise

    def _raise_if_diverged(self, first_bad: list[float], cause: Exception | None = None) -> None:
        step, loss, grad_norm = first_bad
        if step < 0:
            return
        what = f"the loss became {loss}" if not math.isfinite(loss) else f"the gradient norm became {grad_norm}"
        seen = (f"found after step {self.step}: the loop checks once per logging window" if cause is None else
                f"found when a later step raised {type(cause).__name__}: {cause}")
        kept = (f"the last good checkpoint (after epoch {self.epoch}) is kept at {self.checkpoint}"
                if self.checkpoint and Path(self.checkpoint).exists() else "no checkpoint was written yet")
        raise TrainingDiverged(
            f"{self.prefix}{what} at epoch {self.epoch + 1}, step {int(step)} ({seen}); {kept}. "
            f"Try a lower learning rate (lr={self.cfg.lr}), gradient clipping or KL warm-up.") from cause


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


CHECKPOINT_KEYS = {"model", "optimizer", "scheduler", "epoch", "history", "complete"}


def load_checkpoint(path, model: nn.Module, opt=None, sched=None, *, desc: str = "train") -> dict | None:
    """Load the checkpoint at `path` into `model` (and `opt`, `sched`); return its contents, or None when
    there is no file. A file that cannot be used, because it is truncated, not a checkpoint, or does not
    fit the model or optimizer (written by another version), is moved aside to
    ``<name>.unreadable-<time>.pt`` with a message saying so, the model and optimizer are left as they
    were, and None is returned: the caller trains from scratch."""
    path = Path(path)
    if not path.exists():
        return None
    device = next(model.parameters()).device
    before = [copy.deepcopy(m.state_dict()) for m in (model, opt, sched) if m is not None]
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        missing = None if not isinstance(state, dict) else CHECKPOINT_KEYS - set(state)
        if missing is None or missing:
            raise ValueError("not a training checkpoint" + (f" (no {sorted(missing)})" if missing else ""))
        model.load_state_dict(state["model"])
        if opt is not None:
            opt.load_state_dict(state["optimizer"])
        if sched is not None:
            if state["scheduler"] is None:
                raise ValueError("it was written without a learning-rate schedule")
            sched.load_state_dict(state["scheduler"])
    except torch.OutOfMemoryError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever makes the file unusable, the remedy is to retrain
        for m, saved in zip([m for m in (model, opt, sched) if m is not None], before):
            m.load_state_dict(saved)
        aside = path.with_name(f"{path.stem}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}{path.suffix}")
        os.replace(path, aside)
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        reason = reason if len(reason) <= 200 else reason[:199] + "…"
        message = (f"{desc}: cannot use the checkpoint {path} ({reason}); moved it to {aside.name} and training "
                   "from scratch")
        print(message)
        report(message)
        return None
    return state


# --- the checkpoint cache -------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where trained models are cached: ``$C2F_CACHE`` or ``~/.cache/c2f/checkpoints``."""
    return Path(os.environ.get("C2F_CACHE") or Path.home() / ".cache" / "c2f" / "checkpoints").expanduser()


def cache_key(name: str, model: nn.Module, data: ImageSet, cfg: TrainConfig, valid: ImageSet | None) -> str:
    """A key that changes whenever the model, its training, its data or its seed does."""
    model_cfg = asdict(model.cfg) if is_dataclass(getattr(model, "cfg", None)) else repr(model)
    return stable_hash({
        "version": CACHE_VERSION, "name": name, "class": type(model).__qualname__, "model": model_cfg,
        "train": {**asdict(cfg), **_RETIRED_FIELDS}, "data": data.spec, "valid": None if valid is None else valid.spec,
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

    An unfinished cached run is resumed. `retrain` discards any cached run and trains from scratch. A cached
    file that cannot be used is moved aside and the model trained again (see :func:`load_checkpoint`).
    """
    path = cache_dir() / f"{name}-{cache_key(name, model, data, cfg, valid)}.pt"
    if retrain and path.exists():
        path.unlink()
    state = load_checkpoint(path, model, desc=name)
    if state is not None and state["complete"]:
        model.eval()
        print(f"{name}: loaded the cached model ({path.name}): {summary_line(state['history'])}")
        report(f"{name}: loaded from the cache")
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
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> list[dict]:
    """Train a :class:`c2f.objectives.StageWise` model stage by stage: for s = 1..``model.num_stages``,
    call ``model.set_stage(s)`` (which freezes what earlier stages trained) and then :func:`train_or_load`
    once, cached as ``<name>-stage<s>``. `on_epoch_end(epoch, summary)` is called after every epoch of every
    stage trained, with the stage in ``summary["stage"]``. Returns the history of each stage."""
    histories = []
    for s in range(1, model.num_stages + 1):
        model.set_stage(s)
        hook = None if on_epoch_end is None else (lambda e, summary, s=s: on_epoch_end(e, {**summary, "stage": s}))
        histories.append(train_or_load(model, data, cfg, name=f"{name}-stage{s}", valid=valid, retrain=retrain,
                                       on_epoch_end=hook))
    return histories
