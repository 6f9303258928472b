"""Figures: every plotting helper draws from the data structures the rest of the package produces."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from c2f import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_image_grid_and_reconstructions():
    x = torch.rand(6, 1, 28, 28)
    assert isinstance(plots.image_grid(x, nrow=3, title="t"), plt.Figure)
    fig = plots.reconstructions(x, x.flip(0))
    assert len(fig.axes) == 2


def test_training_curves_from_fit_histories():
    history = {"steps": {"step": [2, 4], "loss": [3.0, 2.0], "elbo": [-3.0, -2.0], "recon": [2.5, 1.5],
                         "kl": [0.5, 0.5]},
               "epochs": {"epoch": [1, 2], "loss": [3.0, 2.0], "valid_elbo": [-3.1, -2.2]}}
    fig = plots.training_curves({"a": history, "b": history})
    assert len(fig.axes) == 3
    elbo_ax = fig.axes[0]
    assert len(elbo_ax.lines) == 4  # training and validation for each model
    assert list(elbo_ax.lines[0].get_xdata()) == [1.0, 2.0]  # steps converted to epochs


def test_latent_manifold_lays_out_z1_rightwards_and_z2_upwards():
    seen = []

    def generate(z):
        seen.append(z.clone())
        return torch.zeros(len(z), 1, 4, 4)

    plots.latent_manifold(generate, n=3)
    z = seen[0]
    assert z.shape == (9, 2)
    assert z[0, 0] < z[1, 0] < z[2, 0]  # first row: z1 increases to the right
    assert z[0, 1] > z[3, 1] > z[6, 1]  # first column: z2 decreases downwards
    assert z[0, 0] == pytest.approx(-1.6449, abs=1e-3)  # the 5 % quantile


def test_traversal_sweeps_one_dimension_per_row():
    rows = []

    def generate(z):
        rows.append(z.clone())
        return torch.zeros(len(z), 1, 4, 4)

    z0 = torch.zeros(1, 3)
    values = torch.linspace(-1, 1, 5)
    plots.traversal(generate, z0, [2, 0], values)
    assert torch.equal(rows[0][:, 2], values) and (rows[0][:, :2] == 0).all()
    assert torch.equal(rows[1][:, 0], values) and (rows[1][:, 1:] == 0).all()


def test_kl_per_dimension_and_latent_scatter():
    fig = plots.kl_per_dimension({"m": [0.1, 2.0, 0.0]}, {"m": torch.tensor([0.5, 1.0, 1e-4])})
    assert len(fig.axes) == 2
    fig = plots.latent_scatter(torch.randn(30, 2), torch.arange(30) % 3)
    assert fig.axes[0].get_xlabel() == "$z_1$"


def test_mean_band_draws_the_mean_and_skips_non_finite_runs():
    import numpy as np

    fig, ax = plt.subplots()
    runs = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    line = plots.mean_band(ax, [0, 1, 2], runs, label="a")
    assert list(line.get_ydata()) == [2.0, 3.0, 4.0]
    assert len(ax.collections) == 1  # the ±1 std band
    exact = plots.mean_band(ax, [0, 1, 2], np.full((1, 3), -np.inf), label="exact")  # nothing to draw
    assert np.isnan(exact.get_ydata()).all()
