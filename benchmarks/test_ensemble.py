"""Several seeds trained at once (benchmarks/ensemble.py) follow exactly the runs they replace.

Run by ``make test`` (pytest puts this folder on the path, so ``ensemble`` imports as bench_vae.py imports it)."""

from __future__ import annotations

import torch

from ensemble import Ensemble
from c2f.models import VAE, VAEConfig

CFG = VAEConfig(arch="mlp", latent_dim=4, hidden=(32, 16), image_shape=(1, 8, 8))


def _models(seeds):
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(VAE(CFG))
    return models


def _batches(steps, n=None):
    g = torch.Generator().manual_seed(123)
    shape = (16, *CFG.image_shape) if n is None else (n, 16, *CFG.image_shape)
    return [torch.bernoulli(torch.full(shape, 0.3), generator=g) for _ in range(steps)]


def test_three_seeds_at_once_match_three_separate_runs():
    seeds, steps = [0, 1, 2], 5
    batches = _batches(steps, n=len(seeds))
    separate = []
    for i, model in enumerate(_models(seeds)):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for t in range(steps):
            torch.manual_seed(1000 + t)  # the same noise draw as the ensemble's step t
            loss, _ = model.loss(batches[t][i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        separate.append((losses, model))

    ens = Ensemble(_models(seeds), randomness="same")
    assert len(list(ens.parameters())) == len(list(separate[0][1].parameters()))  # stacked, no template
    opt = torch.optim.Adam(ens.parameters(), lr=1e-2)
    together = []
    for t in range(steps):
        torch.manual_seed(1000 + t)
        losses, _ = ens.member_losses(batches[t])
        opt.zero_grad()
        losses.sum().backward()
        opt.step()
        together.append(losses.detach())
    together = torch.stack(together, 1)  # [seeds, steps]
    for i, (losses, model) in enumerate(separate):
        torch.testing.assert_close(together[i], torch.tensor(losses), rtol=1e-5, atol=1e-5)
        trained = ens.unstack()[i]
        for a, b in zip(trained.parameters(), model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[1])  # different seeds, different runs


def test_members_draw_their_own_noise_and_share_a_batch():
    ens = Ensemble(_models([0, 0]))  # identical weights: only the noise can tell them apart
    x = _batches(1)[0]
    losses, scalars = ens.member_losses(x)
    assert losses.shape == (2,) and scalars["kl"].shape == (2,)
    assert losses[0] != losses[1]
    loss, logged = ens.loss(x)
    assert loss.dim() == 0 and all(v.dim() == 0 for v in logged.values())
