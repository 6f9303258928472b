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


def test_model_color_is_one_colour_per_family():
    assert plots.model_color("lvae") == plots.model_color("fashion_lvae") == plots.model_color("04/lvae") \
        == plots.FAMILY_COLORS["lvae"]
    assert plots.model_color("markov_hvae") == plots.FAMILY_COLORS["markov_hvae"] != plots.FAMILY_COLORS["hvae"]
    assert plots.model_color("dvae_st") != plots.model_color("dvae")
    assert plots.model_color("vae_conv") == plots.model_color("vae_mlp") == plots.model_color("standard")
    assert plots.model_color("jpeg2000") == plots.model_color("webp") == plots.FAMILY_COLORS["codec"]
    assert plots.model_family("rnn_nor") == "rnn" and plots.model_family("an_unknown_model") is None
    assert plots.model_color("an_unknown_model") == plots.model_color("an_unknown_model")


def test_no_two_families_look_alike():
    """Every pair of family colours is at least MIN_FAMILY_DISTANCE apart in CIEDE2000 (ΔE00; about 2 is
    just noticeable side by side, the palette this replaced had vae/hvae 1.7 and quotient/convdraw 4.1)."""
    import itertools

    import numpy as np
    from matplotlib.colors import to_rgb
    from skimage.color import deltaE_ciede2000, rgb2lab

    assert plots.MIN_FAMILY_DISTANCE >= 15
    lab = {f: rgb2lab(np.array([[to_rgb(c)]]))[0, 0] for f, c in plots.FAMILY_COLORS.items()}
    closest = min((float(deltaE_ciede2000(lab[a], lab[b])), a, b) for a, b in itertools.combinations(lab, 2))
    assert closest[0] >= plots.MIN_FAMILY_DISTANCE, f"{closest[1]} and {closest[2]} are {closest[0]:.1f} apart"


def test_variants_of_a_family_share_the_colour_and_differ_in_style():
    styles = plots.model_styles(["vae_mlp", "vae_conv", "lvae", "rnn", "rnn_nor"])
    assert styles["vae_mlp"]["color"] == styles["vae_conv"]["color"] != styles["lvae"]["color"]
    for a, b in (("vae_mlp", "vae_conv"), ("rnn", "rnn_nor")):
        assert (styles[a]["marker"], styles[a]["linestyle"]) != (styles[b]["marker"], styles[b]["linestyle"])
    fig = plots.rate_curves({"jpeg": ([1, 2], [3, 2]), "webp": ([1, 2], [2.5, 1.5]), "convdraw": ([1, 2], [2, 1]),
                             "convdraw (KL)": ([1, 2], [2, 1])}, "bits", "error", dashed=["convdraw (KL)"])
    jpeg, webp, convdraw, kl = fig.axes[0].lines
    assert jpeg.get_color() == webp.get_color() and jpeg.get_linestyle() != webp.get_linestyle()
    assert convdraw.get_color() == kl.get_color() and kl.get_linestyle() == "--" and convdraw.get_linestyle() == "-"


def test_rate_distortion_draws_the_front_the_kl_rate_and_every_classic_codec():
    """One panel per rate (whole files, container separated, mosaic) on a log rate axis, PSNR up; each draws the
    learned codec's best curve at that rate and every classic codec; the container-separated panel also draws,
    dashed, the KL of what the learned codec sent along its best curve."""
    from c2f.codec import CodecPoint as P

    def point(name, s, b, q, kl=None):
        return P(name, s, b, q, 0.5, 0, 0, None if kl is None else {"kl_bits": kl}, payload_bytes=b - 2,
                 mosaic_bytes=b / 2, mosaic_psnr=q - 1)

    learned = {"d1.0": [point("convdraw", 1, 10, 20.0, 60), point("convdraw", 2, 20, 24.0, 120)],
               "d2.0": [point("convdraw", 1, 5, 18.0, 30), point("convdraw", 2, 12, 21.0, 70)]}
    front = [learned["d2.0"][0], learned["d1.0"][0], learned["d1.0"][1]]
    classic = {"jpeg": [point("jpeg", 5, 30, 22.0), point("jpeg", 50, 60, 30.0)]}
    fig = plots.rate_distortion(learned, classic, front, "tiny")
    whole, payload, mosaic = fig.axes
    assert {ax.get_xscale() for ax in fig.axes} == {"log"} and fig._suptitle.get_text() == "tiny"
    lines = {line.get_label(): line for line in payload.get_lines()}
    assert sorted(lines) == ["convdraw", "convdraw KL of what it sent", "jpeg"]
    assert list(lines["convdraw"].get_xdata()) == [24, 64, 144] and list(lines["jpeg"].get_xdata()) == [224, 464]
    assert list(lines["convdraw KL of what it sent"].get_xdata()) == [30, 60, 120]
    assert lines["convdraw KL of what it sent"].get_linestyle() == "--" and whole.get_legend() is None
    assert [list(line.get_xdata()) for line in whole.get_lines() if line.get_label() == "convdraw"] == [[40, 80, 160]]
    m = {line.get_label(): line for line in mosaic.get_lines()}
    assert list(m["convdraw"].get_xdata()) == [20, 40, 80] and list(m["jpeg"].get_ydata()) == [21.0, 29.0]
    plt.close(fig)
