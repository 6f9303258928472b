"""The metrics comparison of the regression suite: one tolerance per kind of metric, and it bites."""

import json
import math

import pytest

from c2f.book.compare import TOLERANCES, compare_metrics, describe_changes, diff_metrics, tolerance_for, tolerance_table
from c2f.book.runner import NBVAL_REFERENCES

REFERENCES = sorted(NBVAL_REFERENCES.glob("[0-9][0-9]_*.json"))


def _bound(name: str, value: float) -> float:
    tol = tolerance_for(name)
    return tol.abs + tol.rel * abs(value)


def test_each_tolerance_exceeds_its_measured_spread():
    for row in TOLERANCES:
        assert row.abs + row.rel >= row.spread, row


def test_every_reference_metric_has_a_tolerance():
    for path in REFERENCES:
        unmatched = [name for name in json.loads(path.read_text())["metrics"] if tolerance_for(name) is None]
        assert not unmatched, f"{path.name}: no row of c2f.book.compare.TOLERANCES for {unmatched}"


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda p: p.stem)
def test_a_metric_just_outside_its_tolerance_is_flagged(reference):
    """Every metric of every reference, moved by 1.01 × its tolerance (either way), is the one deviation; moved
    by 0.99 × its tolerance, nothing is flagged."""
    record = json.loads(reference.read_text())
    metrics, params = record["metrics"], record["params"]
    assert compare_metrics(metrics, dict(metrics), params) == []
    for name, value in metrics.items():
        if name.endswith("_std") and params.get("n_seeds") == 1 or math.isinf(_bound(name, value)):
            continue  # not compared: the spread of one seed, wall-clock timings
        for sign in (1, -1):
            outside = dict(metrics, **{name: value + sign * 1.01 * _bound(name, value)})
            assert [c.name for c in compare_metrics(metrics, outside, params)] == [name]
            inside = dict(metrics, **{name: value + sign * 0.99 * _bound(name, value)})
            assert compare_metrics(metrics, inside, params) == []


def test_counts_and_toy_losses_are_tight():
    assert compare_metrics({"lvae/active_units_layer_2": 2.0}, {"lvae/active_units_layer_2": 3.0}) == []
    assert compare_metrics({"lvae/active_units_layer_2": 2.0}, {"lvae/active_units_layer_2": 0.0})
    # the toy problem: optimum 0.2178, uniform start 0.2222; a hundredth of that gap is a regression
    assert compare_metrics({"toy/nvil/final_loss": 0.2195}, {"toy/nvil/final_loss": 0.2195 + 4e-5})


def test_missing_new_unmatched_and_nan_metrics_are_deviations():
    ref = {"vae/test_elbo_nats": -90.0, "vae/test_kl_nats": 20.0}
    assert [str(c) for c in compare_metrics(ref, {"vae/test_elbo_nats": -90.0})] == ["vae/test_kl_nats: missing"]
    assert [c.name for c in compare_metrics(ref, {**ref, "vae/test_fid": 3.0})] == ["vae/test_fid"]
    assert [c.name for c in compare_metrics({"vae/test_fid": 3.0}, {"vae/test_fid": 3.0})] == ["vae/test_fid"]
    assert [c.name for c in compare_metrics(ref, {**ref, "vae/test_kl_nats": math.nan})] == ["vae/test_kl_nats"]


def test_the_std_of_a_single_seed_is_not_compared():
    ref, new = {"vae/test_nll_nats_std": 0.0}, {"vae/test_nll_nats_std": 5.0}
    assert compare_metrics(ref, new, {"n_seeds": 1}) == []
    assert [c.name for c in compare_metrics(ref, new, {"n_seeds": 3})] == ["vae/test_nll_nats_std"]


def test_describe_changes_lists_what_moved_deviations_first():
    ref = {"vae/test_elbo_nats": -90.0, "vae/test_kl_nats": 20.0, "vae/test_nll_nats": 85.0}
    new = {"vae/test_elbo_nats": -90.01, "vae/test_kl_nats": 25.0, "vae/test_nll_nats": 85.0}
    assert [c.name for c in diff_metrics(ref, new)] == ["vae/test_elbo_nats", "vae/test_kl_nats"]
    text = describe_changes(ref, new).splitlines()
    assert text[0] == "  2 metric(s) moved, 1 outside their tolerance:"
    assert text[1].startswith("    vae/test_kl_nats: 20 -> 25 (+5; OUTSIDE")
    assert "within" in text[2]
    assert describe_changes(ref, ref) == "  no metric moved"


def test_the_appendix_states_the_table():
    from c2f.book.chapters import PROJECT_ROOT

    assert tolerance_table() in (PROJECT_ROOT / "book" / "appendix.md").read_text(), (
        "book/appendix.md's tolerance table differs from c2f.book.compare.TOLERANCES: "
        "paste c2f.book.compare.tolerance_table()")


def test_wall_clock_timings_are_recorded_but_never_compared():
    assert compare_metrics({"pixelcnn/binarized_mnist/sampling_s_per_image": 0.1},
                           {"pixelcnn/binarized_mnist/sampling_s_per_image": 9.0}) == []
