"""Chapter parameters: declarations, profiles, overrides, and the named errors for bad ones."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from c2f.chapters import (ParameterError, chapter_path, chapter_paths, declared_parameters, profile_overrides,
                          resolve_parameters)

ROOT = Path(__file__).resolve().parents[2]


def parameters_cell_by_hand(path: Path) -> dict:
    """Execute the lines between the `# %% tags=["parameters"]` marker and the next cell marker: an
    independent reading of the declaration to compare declared_parameters with."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# %%") and '"parameters"' in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%"))
    namespace: dict = {}
    exec("\n".join(lines[start + 1:end]), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


def test_declared_parameters_of_chapter_01():
    """The names (in order) and defaults of 01_vae's parameters cell; `profile` and `seed` come first and the
    learning rate is a float."""
    params = declared_parameters("01_vae")
    expected = parameters_cell_by_hand(chapter_path("01_vae"))
    assert list(params) == list(expected) and params == expected
    assert list(params)[:2] == ["profile", "seed"] and params["profile"] == "default"
    for key in ("epochs_mlp", "lr", "mlp_hidden", "retrain", "dataset"):
        assert key in params
    assert isinstance(params["lr"], float) and isinstance(params["mlp_hidden"], list)
    assert declared_parameters(chapter_path("01_vae")) == params  # a path works as well as a stem


def test_defaults_resolve_to_the_declaration():
    assert resolve_parameters("01_vae") == declared_parameters("01_vae")


def test_profile_values_override_defaults_and_profile_is_recorded():
    smoke = yaml.safe_load(chapter_path("01_vae").with_suffix(".yml").read_text())["smoke"]
    params = resolve_parameters("01_vae", "smoke")
    assert params["profile"] == "smoke"
    for key, value in smoke.items():
        assert params[key] == value
    untouched = set(declared_parameters("01_vae")) - set(smoke) - {"profile"}
    assert all(params[k] == declared_parameters("01_vae")[k] for k in untouched)


def test_overrides_win_over_the_profile():
    params = resolve_parameters("01_vae", "smoke", {"epochs_mlp": 7, "lr": 0.01})
    assert params["epochs_mlp"] == 7 and params["lr"] == 0.01


def test_string_overrides_are_parsed():
    """Command-line strings: '5' is an int, '1e-3' a float where a float is declared (YAML alone would keep
    it a string), '[64, 32]' a list, 'true' a bool; strings stay strings."""
    params = resolve_parameters("01_vae", "default", {
        "epochs_mlp": "5", "lr": "1e-3", "mlp_hidden": "[64, 32]", "retrain": "true", "dataset": "omniglot",
        "kl_warmup_epochs": "2"})
    assert params["epochs_mlp"] == 5 and type(params["epochs_mlp"]) is int
    assert params["lr"] == 1e-3 and type(params["lr"]) is float
    assert params["mlp_hidden"] == [64, 32]
    assert params["retrain"] is True
    assert params["dataset"] == "omniglot"
    assert params["kl_warmup_epochs"] == 2.0 and type(params["kl_warmup_epochs"]) is float


def test_an_int_is_accepted_for_a_float_parameter():
    params = resolve_parameters("01_vae", "default", {"lr": 1})
    assert params["lr"] == 1.0 and type(params["lr"]) is float


def test_unknown_parameter_is_named():
    with pytest.raises(ParameterError, match="no_such_key"):
        resolve_parameters("01_vae", "default", {"no_such_key": 1})


@pytest.mark.parametrize("key, value", [
    ("epochs_mlp", "abc"), ("epochs_mlp", 1.5), ("epochs_mlp", "1.5"), ("epochs_mlp", True),
    ("lr", "fast"), ("lr", True), ("retrain", 1), ("mlp_hidden", 64), ("dataset", 3),
])
def test_wrong_type_is_named(key, value):
    """A value of the wrong type raises ParameterError naming the parameter (bool is not an int here)."""
    with pytest.raises(ParameterError, match=key):
        resolve_parameters("01_vae", "default", {key: value})


def test_unknown_profile_is_named():
    with pytest.raises(ParameterError, match="no_such_profile"):
        resolve_parameters("01_vae", "no_such_profile")
    with pytest.raises(ParameterError, match="no_such_profile"):
        profile_overrides("01_vae", "no_such_profile")


def test_unknown_chapter_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="99_nothing"):
        chapter_path("99_nothing")


def test_chapter_paths_are_in_book_order_and_found():
    paths = chapter_paths()
    assert paths and paths == sorted(paths)
    assert chapter_path("01_vae") in paths


@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_every_profile_names_only_declared_parameters_with_valid_types(path):
    """Each profile of every notebooks/NN_*.yml resolves: only declared keys, values of the declared type."""
    declared = declared_parameters(path)
    profiles_file = path.with_suffix(".yml")
    profiles = (yaml.safe_load(profiles_file.read_text()) or {}) if profiles_file.exists() else {}
    for profile, values in profiles.items():
        unknown = set(values or {}) - set(declared)
        assert not unknown, f"{profiles_file.name}: profile {profile!r} sets undeclared {sorted(unknown)}"
        resolve_parameters(path, profile)


def test_parameters_cell_without_a_tag_or_with_statements_is_refused(tmp_path):
    """No cell tagged 'parameters', or a statement other than an assignment in it: ParameterError naming
    the file."""
    chapter = tmp_path / "98_bad.py"
    chapter.write_text('# %%\nseed = 0\n')
    with pytest.raises(ParameterError, match="98_bad.py"):
        declared_parameters(chapter)
    chapter.write_text('# %% tags=["parameters"]\nseed = 0\nimport os\n')
    with pytest.raises(ParameterError, match="98_bad.py"):
        declared_parameters(chapter)


def test_a_computed_parameter_value_is_a_named_parameter_error(tmp_path):
    """`epochs = seed + 1` in the parameters cell is not a literal: the error must be a ParameterError (which
    the CLI turns into exit code 2) naming the file and the parameter, not ast's bare
    'ValueError: malformed node or string' (which the CLI shows as a traceback)."""
    chapter = tmp_path / "98_bad.py"
    chapter.write_text('# %% tags=["parameters"]\nseed = 0\nepochs = seed + 1\n')
    with pytest.raises(ParameterError) as info:
        declared_parameters(chapter)
    assert "98_bad.py" in str(info.value) and "epochs" in str(info.value)


def test_cli_rejects_an_unknown_parameter_before_running(tmp_path):
    """`python -m c2f run 01_vae -p bogus 1` exits with code 2 within seconds, names 'bogus', and writes
    nothing (no notebook, no record: the check comes before any execution or training)."""
    out = tmp_path / "out"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "c2f", "run", "01_vae", "-p", "bogus", "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    assert "bogus" in proc.stderr
    assert elapsed < 30
    assert not out.exists() or not any(out.iterdir())


def test_cli_rejects_a_wrong_type(tmp_path):
    """`-p epochs_mlp abc`: exit code 2 and the parameter named."""
    proc = subprocess.run([sys.executable, "-m", "c2f", "run", "01_vae", "-p", "epochs_mlp", "abc",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "epochs_mlp" in proc.stderr
