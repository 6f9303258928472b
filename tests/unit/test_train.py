"""The training loop: warm-up, exact resume after an interruption, the checkpoint cache and the
NaN guard."""

from __future__ import annotations

import math

import pytest
import torch

from c2f.models import VAE, VAEConfig
from c2f.train import TrainConfig, TrainingDiverged, cache_key, fit, train_or_load

SMALL = VAEConfig(arch="mlp", latent_dim=4, hidden=(32,))



def without_times(history: dict) -> dict:
    """A history without its epochs' wall times, which differ between two otherwise identical runs."""
    return {**history, "epochs": {k: v for k, v in history["epochs"].items() if k != "time_s"}}

def new_model(seed: int = 0, cfg: VAEConfig = SMALL) -> VAE:
    torch.manual_seed(seed)
    return VAE(cfg)


class Interrupt(Exception):
    """Stands for a run killed between two epochs."""


class RecordingVAE(VAE):
    """A VAE that records the kl_weight and free_bits that the loop passes to its loss."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.seen: list[tuple[float, float]] = []

    def loss(self, x, kl_weight=1.0, free_bits=0.0):
        self.seen.append((kl_weight, free_bits))
        return super().loss(x, kl_weight, free_bits)


def test_fit_warms_up_the_kl_weight_per_step(make_images):
    """kl_warmup_epochs=1 with 4 steps per epoch: weights 0, 1/4, 1/2, 3/4, then 1; free_bits is passed."""
    data = make_images(64)
    torch.manual_seed(0)
    model = RecordingVAE(SMALL)
    fit(model, data, TrainConfig(epochs=2, batch_size=16, kl_warmup_epochs=1.0, free_bits=0.25))
    assert [w for w, _ in model.seen] == pytest.approx([0, 0.25, 0.5, 0.75, 1, 1, 1, 1])
    assert {fb for _, fb in model.seen} == {0.25}


class PartsVAE(VAE):
    """A VAE that asks for three optimizer steps per minibatch and records the parts it is called with."""

    steps_per_batch = 3

    def __init__(self, cfg):
        super().__init__(cfg)
        self.parts: list[int] = []

    def loss(self, x, kl_weight=1.0, free_bits=0.0, part=None):
        self.parts.append(part)
        return super().loss(x, kl_weight, free_bits)


def test_fit_takes_steps_per_batch_optimizer_steps(make_images):
    """A model with steps_per_batch = 3 gets its loss called with part 0, 1, 2 for every minibatch, and the
    optimizer steps after each part (Adam's step count is 3 per minibatch)."""
    data = make_images(32)
    torch.manual_seed(0)
    model = PartsVAE(SMALL)
    history = fit(model, data, TrainConfig(epochs=2, batch_size=16, schedule="cosine"))
    assert model.parts == [0, 1, 2] * 4
    assert len(history["epochs"]["epoch"]) == 2


def test_fit_history_layout(make_images):
    """History: one row per epoch; step-level rows every log_every steps and at the end of each epoch."""
    data = make_images(100)  # 7 steps per epoch with batch 16 (the last one has 4 images)
    history = fit(new_model(), data, TrainConfig(epochs=2, batch_size=16), log_every=3)
    assert history["epochs"]["epoch"] == [1, 2]
    assert history["steps"]["step"] == [3, 6, 7, 10, 13, 14]
    for key in ("loss", "elbo", "recon", "kl"):
        assert len(history["epochs"][key]) == 2 and all(math.isfinite(v) for v in history["epochs"][key])


# --- exact resume ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_after_interrupt_equals_an_uninterrupted_run(make_images, tmp_path, schedule):
    """Kill a run after epoch 1, resume it from its checkpoint with a fresh model object: the final
    parameters, optimizer state and history are exactly those of a run that was never interrupted (also with
    the cosine schedule and KL warm-up, whose state must be restored too)."""
    data = make_images(512, seed=3)
    cfg = TrainConfig(epochs=3, batch_size=64, lr=2e-3, schedule=schedule, kl_warmup_epochs=1.5, seed=7)

    straight_ckpt = tmp_path / "straight.pt"
    straight = new_model(1)
    straight_history = fit(straight, data, cfg, checkpoint=straight_ckpt)

    ckpt = tmp_path / "interrupted.pt"

    def stop_after_first(epoch, summary):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(new_model(1), data, cfg, checkpoint=ckpt, on_epoch_end=stop_after_first)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1

    torch.manual_seed(999)  # the global RNG state at resume time must not matter
    epochs_run = []
    resumed = new_model(1)
    resumed_history = fit(resumed, data, cfg, checkpoint=ckpt, on_epoch_end=lambda e, s: epochs_run.append(e))
    assert epochs_run == [2, 3]  # resumed, not restarted

    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert without_times(resumed_history) == without_times(straight_history)
    assert all(len(h["epochs"]["time_s"]) == 3 and min(h["epochs"]["time_s"]) > 0
               for h in (resumed_history, straight_history))  # every epoch's training time, also the resumed run's
    sa, sb = torch.load(straight_ckpt, weights_only=True), torch.load(ckpt, weights_only=True)
    assert sa["epoch"] == sb["epoch"] == 3 and sa["complete"] and sb["complete"]
    for pid, state in sa["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(value, sb["optimizer"]["state"][pid][name]), (pid, name)
    assert sa["scheduler"] == sb["scheduler"]


def test_checkpoint_loads_with_weights_only(make_images, tmp_path):
    """The checkpoint holds only tensors and plain containers: torch.load(weights_only=True) reads it, and
    it has what a resume needs."""
    ckpt = tmp_path / "model.pt"
    model = new_model()
    history = fit(model, make_images(64), TrainConfig(epochs=1, batch_size=32, schedule="cosine"), checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=True)
    assert set(state) == {"model", "optimizer", "scheduler", "epoch", "history", "complete"}
    assert state["epoch"] == 1 and state["complete"] is True and state["history"] == history
    for key, value in model.state_dict().items():
        assert torch.equal(state["model"][key], value)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_fit_on_a_finished_checkpoint_does_not_train(make_images, tmp_path):
    """Calling fit again with the checkpoint of a finished run loads it and runs no epoch."""
    data, cfg, ckpt = make_images(64), TrainConfig(epochs=2, batch_size=32), tmp_path / "done.pt"
    first = new_model()
    history = fit(first, data, cfg, checkpoint=ckpt)
    again = new_model(5)
    calls = []
    assert fit(again, data, cfg, checkpoint=ckpt, on_epoch_end=lambda e, s: calls.append(e)) == history
    assert calls == []
    for key, value in first.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)


# --- the checkpoint cache --------------------------------------------------------------------------------


def test_train_or_load_caches_and_retrains(make_images, isolated_cache):
    """The first call trains and caches; the second loads the same parameters without training (no epoch
    callback) even into a differently initialised model; retrain=True trains again from scratch."""
    data, cfg = make_images(128), TrainConfig(epochs=2, batch_size=64, seed=1)
    epochs = []
    first = new_model(0)
    history = train_or_load(first, data, cfg, name="tiny", on_epoch_end=lambda e, s: epochs.append(e))
    assert epochs == [1, 2]
    files = list(isolated_cache.glob("tiny-*.pt"))
    assert len(files) == 1 and cache_key("tiny", first, data, cfg, None) in files[0].name

    epochs.clear()
    second = new_model(42)  # different initial weights: they must be replaced by the cached ones
    assert train_or_load(second, data, cfg, name="tiny", on_epoch_end=lambda e, s: epochs.append(e)) == history
    assert epochs == []
    for key, value in first.state_dict().items():
        assert torch.equal(second.state_dict()[key], value), key
    assert not second.training

    third = new_model(0)
    train_or_load(third, data, cfg, name="tiny", retrain=True, on_epoch_end=lambda e, s: epochs.append(e))
    assert epochs == [1, 2]
    for key, value in first.state_dict().items():  # same seed, same data: the same result again
        assert torch.equal(third.state_dict()[key], value), key


@pytest.mark.parametrize("damage", ["truncated", "not_a_checkpoint", "another_model"])
def test_an_unusable_cached_checkpoint_is_moved_aside_and_the_model_retrained(make_images, isolated_cache,
                                                                              capsys, damage):
    """A cached file that is truncated, not a checkpoint at all, or a checkpoint of another model (say, from
    an older version) does not stop the run with a raw error: it is moved aside under a name that says so,
    the message names it, and the model is trained again, to exactly the result of a clean run."""
    data, cfg = make_images(128), TrainConfig(epochs=2, batch_size=64, seed=1)
    clean = new_model(0)
    clean_history = train_or_load(clean, data, cfg, name="tiny")
    (path,) = isolated_cache.glob("tiny-*.pt")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "not_a_checkpoint":
        torch.save(torch.zeros(3), path)
    else:
        other = VAE(VAEConfig(arch="mlp", latent_dim=3, hidden=(16,)))
        torch.save({"model": other.state_dict(), "optimizer": {}, "scheduler": None, "epoch": 2, "history": {},
                    "complete": True}, path)
    capsys.readouterr()

    again = new_model(0)
    history = train_or_load(again, data, cfg, name="tiny")
    out = capsys.readouterr().out
    aside = list(isolated_cache.glob("tiny-*.unreadable-*.pt"))
    assert len(aside) == 1 and aside[0].name.startswith(path.stem + ".unreadable-")
    assert str(path) in out and aside[0].name in out and "training from scratch" in out, out
    assert without_times(history) == without_times(clean_history)
    for key, value in clean.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    assert torch.load(path, weights_only=True)["complete"]  # a good checkpoint is back in its place


def test_fit_recovers_from_an_unreadable_checkpoint_too(make_images, tmp_path, capsys):
    """fit with an explicit checkpoint path: a truncated file is moved aside and training starts afresh."""
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"PK\x03\x04 not really a zip")
    history = fit(new_model(), make_images(64), TrainConfig(epochs=1, batch_size=32), checkpoint=ckpt)
    assert history["epochs"]["epoch"] == [1] and torch.load(ckpt, weights_only=True)["complete"]
    assert len(list(tmp_path.glob("run.unreadable-*.pt"))) == 1
    assert "cannot use the checkpoint" in capsys.readouterr().out


def test_cache_key_changes_with_model_training_data_and_seed(make_images):
    data = make_images(64)
    cfg = TrainConfig(epochs=1)
    base = cache_key("m", new_model(), data, cfg, None)
    assert base == cache_key("m", new_model(7), data, cfg, None)  # initial weights come from cfg.seed
    others = [
        cache_key("other", new_model(), data, cfg, None),
        cache_key("m", VAE(VAEConfig(arch="mlp", latent_dim=5, hidden=(32,))), data, cfg, None),
        cache_key("m", new_model(), data, TrainConfig(epochs=2), None),
        cache_key("m", new_model(), data, TrainConfig(epochs=1, seed=1), None),
        cache_key("m", new_model(), data.subset(32, seed=None), cfg, None),
        cache_key("m", new_model(), data, cfg, data.subset(16, seed=None)),
    ]
    assert len({base, *others}) == len(others) + 1


# --- the NaN guard ---------------------------------------------------------------------------------------


class DivergingVAE(VAE):
    """A VAE whose loss turns NaN from its `bad_call`-th call on."""

    def __init__(self, cfg, bad_call: int):
        super().__init__(cfg)
        self.calls, self.bad_call = 0, bad_call

    def loss(self, x, kl_weight=1.0, free_bits=0.0):
        self.calls += 1
        loss, scalars = super().loss(x, kl_weight, free_bits)
        return (loss * float("nan") if self.calls >= self.bad_call else loss), scalars


def test_nan_loss_raises_training_diverged_and_keeps_the_last_good_checkpoint(make_images, tmp_path):
    """The loss goes NaN in epoch 2: TrainingDiverged names the checkpoint; the file from epoch 1 is still
    there, loads with weights_only=True and holds finite parameters."""
    data = make_images(128)  # 2 steps per epoch: the 3rd loss call is the first step of epoch 2
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    model = DivergingVAE(SMALL, bad_call=3)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, data, TrainConfig(epochs=3, batch_size=64), checkpoint=ckpt, desc="diverging")
    message = str(info.value)
    assert str(ckpt) in message and "nan" in message.lower() and "epoch 2" in message
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and state["complete"] is False
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_a_real_vae_with_a_far_too_high_learning_rate_raises_training_diverged(make_images, tmp_path):
    """Not a rigged loss: an MLP VAE trained with lr=1 blows up within the first epoch (the posterior
    variances under- or overflow). The loop must report that as TrainingDiverged, with its advice, rather
    than let a torch.distributions argument-validation ValueError escape."""
    torch.manual_seed(0)
    with pytest.raises(TrainingDiverged, match="lr=1.0"):
        fit(new_model(), make_images(256), TrainConfig(epochs=3, batch_size=64, lr=1.0),
            checkpoint=tmp_path / "run.pt")


def test_nan_loss_before_any_checkpoint_says_so(make_images, tmp_path):
    torch.manual_seed(0)
    model = DivergingVAE(SMALL, bad_call=1)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet") as info:
        fit(model, make_images(64), TrainConfig(epochs=1, batch_size=64), checkpoint=tmp_path / "none.pt")
    assert "epoch 1, step 0" in str(info.value)
    assert not (tmp_path / "none.pt").exists()


def test_nan_inside_a_logging_window_names_its_step_and_is_never_checkpointed(make_images, tmp_path):
    """The guard looks once per logging window (here: once per epoch of 4 steps), yet it names the first
    non-finite step exactly (step 5, the 2nd of epoch 2, not the window's last), and the checkpoint of
    epoch 2, which would hold the NaN update, is never written."""
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    model = DivergingVAE(SMALL, bad_call=6)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, make_images(256), TrainConfig(epochs=3, batch_size=64), log_every=1000, checkpoint=ckpt)
    message = str(info.value)
    assert "the loss became nan at epoch 2, step 5" in message and "after step 7" in message, message
    assert model.calls == 8  # the epoch ran to its end before the look
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 1 and all(torch.isfinite(v).all() for v in state["model"].values())


class FragileVAE(DivergingVAE):
    """A diverging VAE whose loss raises a ValueError once its weights are NaN (as a distribution that
    validates its arguments would)."""

    def loss(self, x, kl_weight=1.0, free_bits=0.0):
        if not all(torch.isfinite(p).all() for p in self.parameters()):
            raise ValueError("parameters must be finite")
        return super().loss(x, kl_weight, free_bits)


def test_an_error_after_a_non_finite_step_is_reported_as_the_divergence(make_images):
    """Between two looks of the guard, the NaN update makes a later step fail: that is reported as
    TrainingDiverged at the first non-finite step, with the error as its cause; an error with no
    non-finite step before it is left alone."""
    torch.manual_seed(0)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 1 .*ValueError") as info:
        fit(FragileVAE(SMALL, bad_call=2), make_images(256), TrainConfig(epochs=1, batch_size=64), log_every=10)
    assert isinstance(info.value.__cause__, ValueError)

    class Broken(VAE):
        def loss(self, x, kl_weight=1.0, free_bits=0.0):
            raise ValueError("a plain bug")

    with pytest.raises(ValueError, match="a plain bug"):
        fit(Broken(SMALL), make_images(64), TrainConfig(epochs=1, batch_size=64))


def test_fit_waits_for_the_device_once_per_logging_window(make_images, monkeypatch):
    """No per-step host sync: every conversion of a tensor to a Python value made by the loop's own code
    (item, tolist, float, int, bool) is counted; there is one per logging window (3 per epoch: after steps
    3, 6 and the epoch's last, 7), not one or more per step."""
    import c2f.train

    calls: list[str] = []
    for method in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__"):
        original = getattr(torch.Tensor, method)

        def counting(self, *args, _original=original, _method=method, **kwargs):
            import sys

            if sys._getframe(1).f_code.co_filename == c2f.train.__file__:
                calls.append(_method)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, method, counting)
    history = fit(new_model(), make_images(100), TrainConfig(epochs=2, batch_size=16), log_every=3)
    monkeypatch.undo()
    assert history["steps"]["step"] == [3, 6, 7, 10, 13, 14]
    assert calls == ["tolist"] * 6


class NaNGradientVAE(VAE):
    """A VAE whose loss stays finite but whose gradient is NaN on its `bad_call`-th call: d/db √(b − b₀)
    is infinite at b = b₀, and 0 · ∞ = NaN. The NaN reaches the parameters through the optimizer step and
    makes the next loss NaN."""

    def __init__(self, cfg, bad_call: int):
        super().__init__(cfg)
        self.calls, self.bad_call = 0, bad_call

    def loss(self, x, kl_weight=1.0, free_bits=0.0):
        self.calls += 1
        loss, scalars = super().loss(x, kl_weight, free_bits)
        if self.calls == self.bad_call:
            b = self.posterior_head.linear.bias[0]
            loss = loss + 0.0 * torch.sqrt(b - b.detach())
        return loss, scalars


def test_a_nan_gradient_raises_training_diverged_and_no_checkpoint_holds_nan(make_images, tmp_path):
    """Divergence that starts in the backward pass (finite loss, NaN gradient) at the last step of epoch 1:
    training must stop with TrainingDiverged (not with whatever error the NaN weights cause next), and any
    checkpoint left behind, which the message offers as 'the last good checkpoint', must hold finite
    parameters (resuming from NaN weights would only diverge again)."""
    data = make_images(128)  # 2 steps per epoch: call 2 is the last step of epoch 1
    ckpt = tmp_path / "run.pt"
    torch.manual_seed(0)
    model = NaNGradientVAE(SMALL, bad_call=2)
    with pytest.raises(TrainingDiverged):
        fit(model, data, TrainConfig(epochs=3, batch_size=64), checkpoint=ckpt)
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        bad = [k for k, v in state["model"].items() if not torch.isfinite(v).all()]
        assert not bad, f"the checkpoint after epoch {state['epoch']} has non-finite {bad}"


def test_the_optimizer_is_fused_adam_with_the_configured_learning_rate():
    from c2f.train import make_optimizer

    opt = make_optimizer(new_model().parameters(), TrainConfig(lr=3e-4))
    assert type(opt) is torch.optim.Adam and opt.defaults["fused"] is True and opt.defaults["lr"] == 3e-4


def test_clip_gradients_measures_the_norm_before_clipping_and_clipping_caps_it():
    """The guard's norm is the gradients' own; with grad_clip > 0 the gradients are then scaled to that norm,
    with grad_clip = 0 they are left exactly as they were."""
    from c2f.train import clip_gradients

    model = new_model()
    x = torch.bernoulli(torch.full((16, 1, 28, 28), 0.3))
    model.loss(x)[0].backward()
    before = [p.grad.clone() for p in model.parameters()]
    norm = torch.cat([g.flatten() for g in before]).norm()
    torch.testing.assert_close(clip_gradients(model, 0.0), norm)
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), before))
    torch.testing.assert_close(clip_gradients(model, 1e-3), norm)
    after = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    torch.testing.assert_close(after, torch.tensor(1e-3), rtol=1e-4, atol=0.0)


def test_progress_goes_to_the_console_file_and_the_page_gets_one_line_per_model(make_images, isolated_cache,
                                                                                 tmp_path, monkeypatch, capsys):
    """In a run of the runner (C2F_PROGRESS set): progress lines (epoch, step, loss) go to the progress file
    the runner shows on the console, no tqdm bar reaches the page (stderr), and the page (stdout) gets one
    line per trained or loaded model with its steps, final loss and time."""
    progress = tmp_path / "progress.log"
    monkeypatch.setenv("C2F_PROGRESS", str(progress))
    data, cfg = make_images(128), TrainConfig(epochs=2, batch_size=32, seed=1)
    history = train_or_load(new_model(0), data, cfg, name="tiny")
    lines = progress.read_text().splitlines()
    final = history["epochs"]["loss"][-1]
    assert lines[-1].startswith(f"tiny: epoch 2/2, step 8/8, loss {final:.2f}, ")
    assert any(line.startswith("tiny: epoch 1/2, step 4/8, loss ") for line in lines)
    out, err = capsys.readouterr()
    assert err == ""  # no progress bar in the page
    assert out.strip() == f"tiny: 8 steps (2 epochs), final loss {final:.2f}, " \
                          f"{sum(history['epochs']['time_s']):.0f} s of training"
    train_or_load(new_model(0), data, cfg, name="tiny")
    out = capsys.readouterr().out.strip()
    assert out.startswith("tiny: loaded the cached model (tiny-") and f"8 steps (2 epochs), final loss {final:.2f}" in out
    assert progress.read_text().splitlines()[-1] == "tiny: loaded from the cache"
