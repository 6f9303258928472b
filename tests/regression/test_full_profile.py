"""Every chapter's ``full`` profile (the one a GPU runs) executed on the CPU, shrunk.

The ``shrink:`` mapping of ``notebooks/NN_name.yml`` is applied on top of ``full``: data, epochs, steps,
seeds and importance samples shrink, while architectures, model and estimator lists and data sets stay as
``full`` has them, so that a code path only the full profile takes cannot first crash on a GPU. The selected
chapters run through the book's own local executor, one per CPU core at a time (one thread each, as the
references).
"""

import math
import re
import shutil

import pytest
import yaml

from c2f.book.chapters import chapter_paths, resolve_parameters
from c2f.book.executors import Task, default_jobs, run_local
from c2f.book.runner import REFERENCE_ENV, run_task

CHAPTERS = chapter_paths()
# the parameters a shrink mapping may set: sizes of data, training length, seeds, samples, shown images
# (chapter 06's class_groups: how many groups of samples the class-kept measure draws; chapter 08's decode_draws)
SHRINKABLE = re.compile(r"n_seeds|\w+_seeds|(\w+_)?epochs(_\w+)?|(\w+_)?(train|test)_size|iw_samples|\w+_steps"
                        r"|\w+_samples|\w+_images|\w+_scenes|\w+_every|\w+_draws|n_show|class_groups")


def _shrink(path) -> dict:
    return (yaml.safe_load(path.with_suffix(".yml").read_text()) or {}).get("shrink") or {}


def test_shrink_names_only_sizes():
    for path in CHAPTERS:
        shrink = _shrink(path)
        assert shrink, f"{path.with_suffix('.yml').name} has no `shrink:` mapping for the full-profile test"
        other = [k for k in shrink if not SHRINKABLE.fullmatch(k)]
        assert not other, f"{path.stem}: shrink may only set sizes, epochs, seeds and samples, not {other}"
        resolve_parameters(path, "full", shrink)  # declared names, values of the declared types
        full = resolve_parameters(path, "full")
        for key, value in shrink.items():  # 0 means "all the data" for the sizes
            if isinstance(value, (int, float)) and full[key] != 0:
                assert value <= full[key], f"{path.stem}: shrink raises {key} from {full[key]} to {value}"


def test_shrink_names_are_checked():
    assert SHRINKABLE.fullmatch("epochs_conv") and SHRINKABLE.fullmatch("compare_train_size")
    for name in ("hidden", "latent_dims", "models", "batch_size", "group_size", "lr", "estimators", "datasets"):
        assert not SHRINKABLE.fullmatch(name), name


def run_then_drop_checkpoints(task: Task) -> dict:
    """`run_task`, then delete the chapter's checkpoint cache: the full architectures' checkpoints take hundreds
    of MB per chapter (chapter 02's 132 stage checkpoints: 5.3 GB), which this test never reads again. Kept,
    the eight chapters' filled a CI disk (``No space left on device``)."""
    try:
        return run_task(task)
    finally:
        shutil.rmtree(task.env["C2F_CACHE"], ignore_errors=True)


@pytest.fixture(scope="module")
def shrunk_runs(request, tmp_path_factory) -> dict:
    """{chapter: (finished, its record or the error)} for every chapter this session selected, run at once."""
    selected = {item.callspec.params["path"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_full_profile_runs_shrunk"}  # nbval's cells have none
    tasks = []
    for path in sorted(selected):
        out = tmp_path_factory.mktemp(path.stem)
        env = {"C2F_CACHE": str(out / "cache"), **REFERENCE_ENV}
        tasks.append(Task(str(path), "full", str(out), _shrink(path), env))
    return run_local(tasks, default_jobs(), run_then_drop_checkpoints, status_every=600)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_full_profile_runs_shrunk(path, shrunk_runs):
    finished, record = shrunk_runs[path.stem]
    assert finished, record
    assert record["profile"] == "full" and record["metrics"]
    assert all(math.isfinite(v) for v in record["metrics"].values()), record["metrics"]
