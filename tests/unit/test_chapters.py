"""Chapter parameters: declarations, profiles, overrides, and the named errors for bad ones."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from c2f.book.chapters import (SECTIONS, SEED_MAX, ParameterError, chapter_path, chapter_paths, declared_choices,
                          declared_comments, declared_parameters, declared_schema, profile_names, profile_overrides,
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
        if profile in SECTIONS:
            continue
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


@pytest.mark.parametrize("chapter, key, value, message", [
    ("01_vae", "epochs_conv", "-3", "'epochs_conv' must be >= 1, got -3"),
    ("01_vae", "epochs_mlp", 0, "'epochs_mlp' must be >= 1"),
    ("01_vae", "lr", 0, "'lr' must be > 0"),
    ("01_vae", "lr", "-1e-3", "'lr' must be > 0"),
    ("01_vae", "iw_samples", 0, "'iw_samples' must be >= 1"),
    ("01_vae", "n_seeds", 0, "'n_seeds' must be >= 1"),
    ("01_vae", "train_size", -1, "'train_size' must be >= 1 or 0 (all), got -1"),
    ("01_vae", "batch_size", 0, "'batch_size' must be >= 1"),
    ("01_vae", "kl_warmup_epochs", -0.5, "'kl_warmup_epochs' must be >= 0"),
    ("01_vae", "dataset", "cifar10", "'dataset' has unknown value(s) ['cifar10']"),
    ("01_vae", "schedule", "linear", "'schedule' has unknown value(s) ['linear']"),
    ("02_progressive", "models", "[standard, bogus]", "'models' has unknown value(s) ['bogus']"),
    ("02_progressive", "fashion_epochs", 0, "'fashion_epochs' must be >= 1"),
    ("04_hierarchical", "ablations", "[no_warmup, no_dropout]", "'ablations' has unknown value(s) ['no_dropout']"),
    ("05_discrete", "big_estimators", "[exact, straight_through]", "'big_estimators' has unknown value(s)"),
    ("05_discrete", "toy_batch_sizes", "[1, 0]", "'toy_batch_sizes' must be >= 1, got [1, 0]"),
    ("05_discrete", "toy_seeds", 0, "'toy_seeds' must be >= 1"),
    ("05_discrete", "omniglot_alphabets", "[Greek, Klingon]", "'omniglot_alphabets' has unknown value(s) ['Klingon']"),
])
def test_a_value_out_of_range_or_an_unknown_name_is_named(chapter, key, value, message):
    with pytest.raises(ParameterError, match=re.escape(f"{chapter}: parameter {message}")):
        resolve_parameters(chapter, "smoke", {key: value})


@pytest.mark.parametrize("chapter, key, value", [
    ("01_vae", "kl_warmup_epochs", 0), ("01_vae", "train_size", 0), ("01_vae", "test_size", 0),
    ("04_hierarchical", "warmup_epochs", 0.0), ("02_progressive", "fashion_models", []),
    ("05_discrete", "compare_train_size", 0), ("05_discrete", "marginal_weight", 0.0),
    ("05_discrete", "omniglot_alphabets", ["Latin", "Korean"]),
])
def test_zero_where_it_means_something_and_known_names_are_accepted(chapter, key, value):
    assert resolve_parameters(chapter, "smoke", {key: value})[key] == value


def test_the_schema_reads_as_the_old_naming_convention_did():
    """Counts are >= 1; a size whose comment says what 0 means allows 0 (its schema's `zero`); warm-ups >= 0;
    lr > 0; seeds and weights with a meaning for 0 are not bounded below 1."""
    schema = declared_schema("01_vae")
    assert schema["epochs_mlp"]["min"] == 1 and schema["batch_size"]["min"] == 1 and schema["n_seeds"]["min"] == 1
    assert schema["train_size"]["zero"] == "all" and declared_comments("01_vae")["train_size"].endswith("(0 means all 50000)")
    assert schema["kl_warmup_epochs"]["min"] == 0 and schema["lr"]["gt"] == 0 and schema["seed"] == {"type": "seed"}
    assert declared_schema("05_discrete")["marginal_weight"]["min"] == 0
    for path in chapter_paths():  # every comment that gives 0 a meaning has a schema that allows 0
        schema = declared_schema(path)
        for key, comment in declared_comments(path).items():
            if re.search(r"\b0 (means|to skip|skips|gives)\b|\(0:", comment) and schema[key]["type"] != "list":
                assert "zero" in schema[key] or schema[key].get("min", 1) <= 0, (path.stem, key, comment)


@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_every_parameter_has_a_schema_entry(path):
    """declared_schema checks one entry per declared parameter of its default's type; every default obeys its
    own schema (resolve_parameters of the default profile)."""
    assert set(declared_schema(path)) == set(declared_parameters(path))
    resolve_parameters(path, "default")


def test_an_undeclared_or_missing_schema_entry_fails(tmp_path):
    chapter = tmp_path / "98_schema.py"
    chapter.write_text('# %% tags=["parameters"]\nseed = 0\nepochs = 3\n')
    chapter.with_suffix(".yml").write_text("schema:\n  seed: {type: seed}\n")
    with pytest.raises(ParameterError, match=r"missing \['epochs'\]"):
        resolve_parameters(chapter)
    chapter.with_suffix(".yml").write_text("schema:\n  seed: {type: seed}\n  epochs: {type: int}\n  epoch: {type: int}\n")
    with pytest.raises(ParameterError, match=r"not declared \['epoch'\]"):
        resolve_parameters(chapter)
    chapter.with_suffix(".yml").write_text("schema:\n  seed: {type: seed}\n  epochs: {type: float}\n")
    with pytest.raises(ParameterError, match="'epochs'"):
        resolve_parameters(chapter)
    chapter.with_suffix(".yml").write_text("schema:\n  seed: {type: seed}\n  epochs: {type: int, minimum: 1}\n")
    with pytest.raises(ParameterError, match="'epochs'"):
        resolve_parameters(chapter)


@pytest.mark.parametrize("chapter, key, value, message", [  # the rows of issue 21's parameter table
    ("01_vae", "iw_curve_images", "-1", "'iw_curve_images' must be >= 1, got -1"),
    ("01_vae", "lr", "nan", "'lr' must be a finite number, got nan"),
    ("01_vae", "lr", "inf", "'lr' must be a finite number, got inf"),
    ("01_vae", "kl_warmup_epochs", "nan", "'kl_warmup_epochs' must be a finite number"),
    ("01_vae", "latent_dim", "0", "'latent_dim' must be >= 1, got 0"),
    ("01_vae", "latent_dim", "-3", "'latent_dim' must be >= 1, got -3"),
    ("01_vae", "conv_features", "0", "'conv_features' must be >= 1, got 0"),
    ("01_vae", "conv_channels", "[32, a]", "'conv_channels' must be a list of int, got [32, 'a']"),
    ("01_vae", "mlp_hidden", "[]", "'mlp_hidden' must have 1 to any number of elements, got []"),
    ("01_vae", "seed", "99999999999999999999999", f"'seed' must be a seed from 0 to {SEED_MAX}"),
    ("01_vae", "seed", "-1", f"'seed' must be a seed from 0 to {SEED_MAX}"),
    ("01_vae", "train_size", "1000000000", "'train_size' must be <= 50000 (MNIST's 50000 training images)"),
    ("01_vae", "test_size", "99999999", "'test_size' must be <= 10000 (MNIST's 10000 test images)"),
    ("01_vae", "n_seeds", "100000", "'n_seeds' must be <= 100, got 100000"),
    ("02_progressive", "groups", "0", "'groups' must be >= 1, got 0"),
    ("02_progressive", "models", "[]", "'models' must have 1 to any number of elements, got []"),
    ("07_air", "canvas", "0", "'canvas' must be >= 1, got 0"),
    ("07_air", "digit_size", "100", "'digit_size' must be <= canvas (50), got 100"),
])
def test_issue_21_parameter_rows_are_refused_by_name(chapter, key, value, message):
    with pytest.raises(ParameterError, match=re.escape(f"{chapter}: parameter {message}")):
        resolve_parameters(chapter, "default", {key: value})


def test_shrink_and_schema_are_no_profiles():
    assert "shrink" in SECTIONS and "shrink" not in profile_names("01_vae")
    with pytest.raises(ParameterError, match="no profile 'shrink'"):
        resolve_parameters("01_vae", "shrink")


def test_choices_are_the_names_the_code_knows():
    """The YAML's choices list what the package accepts: every progressive variant, every estimator,
    data sets that c2f.data loads, and (where the data is present) Omniglot's background alphabets."""
    from c2f import data
    from c2f.estimators import ESTIMATORS
    from c2f.models.progressive import VARIANTS

    assert sorted(declared_choices("02_progressive")["models"]) == sorted(VARIANTS)
    assert declared_choices("05_discrete")["estimators"] == list(ESTIMATORS)
    assert set(declared_choices("01_vae")["dataset"]) <= set(data.DATASETS)
    assert set(declared_choices("05_discrete")["datasets"]) <= set(data.DATASETS)
    try:
        alphabets = set(data.omniglot_alphabets("train"))
    except (data.DataNotFoundError, FileNotFoundError):
        pytest.skip("no Omniglot data here")
    assert set(declared_choices("05_discrete")["omniglot_alphabets"]) == alphabets


def test_schema_is_no_profile_and_must_name_declared_parameters(tmp_path):
    chapter = tmp_path / "98_names.py"
    chapter.write_text('# %% tags=["parameters"]\nseed = 0\nmodel = "a"\n')
    chapter.with_suffix(".yml").write_text(
        "smoke:\n  seed: 1\nschema:\n  seed: {type: seed}\n  model: {type: str, choices: [a, b]}\n")
    assert profile_names(chapter) == ["default", "smoke"]
    with pytest.raises(ParameterError, match="no profile 'schema'"):
        resolve_parameters(chapter, "schema")
    assert resolve_parameters(chapter, "smoke", {"model": "b"})["model"] == "b"
    with pytest.raises(ParameterError, match=re.escape("'model' has unknown value(s) ['c']")):
        resolve_parameters(chapter, "smoke", {"model": "c"})
    chapter.with_suffix(".yml").write_text("schema:\n  seed: {type: seed}\n  modle: {type: str, choices: [a, b]}\n")
    with pytest.raises(ParameterError, match="modle"):
        resolve_parameters(chapter)


def test_cli_stops_a_negative_epoch_count_at_once(tmp_path, capsys):
    """`-p epochs_conv -3` used to fail late inside a plot; now it exits 2 before any execution."""
    from c2f.book.cli import main

    out = tmp_path / "out"
    assert main(["run", "01_vae", "-p", "epochs_conv", "-3", "--out", str(out)]) == 2
    assert "parameter 'epochs_conv' must be >= 1, got -3" in capsys.readouterr().err
    assert not out.exists()


MAX_CELL_LINES = 25  # the developer guide's limit for a chapter's code cell (the parameters cell excepted)


@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_no_code_cell_is_longer_than_25_lines(path):
    """Chapters only tell the story: logic longer than a short cell belongs in the package (issue 22)."""
    import jupytext

    long = [(len(c.source.splitlines()), c.source.splitlines()[0][:60]) for c in jupytext.read(path).cells
            if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
            and len(c.source.splitlines()) > MAX_CELL_LINES]
    assert not long, f"{path.name}: cells over {MAX_CELL_LINES} lines (lines, first line): {long}"


def model_class_tests(source: str) -> list[str]:
    """The `isinstance` / `issubclass` calls in `source` whose class (or one of a tuple's) is a name from
    :mod:`c2f.models` (``from c2f.models[.family] import X [as Y]``, ``import c2f.models as m`` then ``m.X``,
    or ``c2f.models.X``), as the source text of each call."""
    import ast

    tree, names, modules = ast.parse(source), set(), {"c2f.models"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("c2f.models"):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "c2f":
            modules |= {a.asname or a.name for a in node.names if a.name == "models"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname for a in node.names if a.asname and a.name.startswith("c2f.models")}

    def dotted(e):
        return f"{dotted(e.value)}.{e.attr}" if isinstance(e, ast.Attribute) else getattr(e, "id", "?")

    def from_models(e):
        if isinstance(e, ast.Tuple):
            return any(from_models(t) for t in e.elts)
        if isinstance(e, ast.Name):
            return e.id in names
        return isinstance(e, ast.Attribute) and (dotted(e.value) in modules or dotted(e.value).startswith("c2f.models"))
    return [ast.get_source_segment(source, node) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("isinstance", "issubclass")
            and len(node.args) == 2 and from_models(node.args[1])]


def test_a_model_class_test_is_found_however_the_class_is_imported():
    source = ("from c2f.models import GroupedVAE as G, VAE\nimport c2f.models as m\nfrom c2f import models\n"
              "import c2f\nfrom c2f.models.progressive import SingleVAE\n"
              "isinstance(a, G)\nisinstance(a, (int, VAE))\nisinstance(a, m.DVAE)\nissubclass(t, models.AIR)\n"
              "isinstance(a, c2f.models.PixelVAE)\nisinstance(a, SingleVAE)\n"
              "isinstance(a, dict)\nisinstance(a, torch.Tensor)\nmodel.ordered_groups\n")
    assert model_class_tests(source) == ["isinstance(a, G)", "isinstance(a, (int, VAE))", "isinstance(a, m.DVAE)",
                                         "issubclass(t, models.AIR)", "isinstance(a, c2f.models.PixelVAE)",
                                         "isinstance(a, SingleVAE)"]


@pytest.mark.parametrize("path", chapter_paths(), ids=lambda p: p.stem)
def test_no_chapter_tests_a_model_class(path):
    """Chapters ask the model (its protocols: ``code_order``, ``ordered_groups``, ...) instead of testing its
    class, so a new family needs no chapter branch (issue 22)."""
    import jupytext

    source = "\n".join(c.source for c in jupytext.read(path).cells if c.cell_type == "code")
    assert not model_class_tests(source), f"{path.name} tests a model's class: {model_class_tests(source)}"
