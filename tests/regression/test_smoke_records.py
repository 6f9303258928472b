"""The smoke-profile numbers of every chapter, compared with the committed reference records.

nbval (run first in the same pytest session) re-executes ``tests/notebooks/NN_name.ipynb`` and each
notebook writes its record to ``$C2F_RECORD_DIR`` (see tests/conftest.py). When this file runs alone, the
chapter is executed here with the smoke profile instead. Either way the metrics must match the
reference record: same names, each value within the tolerance of its kind in ``c2f.book.compare.TOLERANCES``
(set from the spread measured between CPU kernels; a broken model moves the smoke numbers by far more).
"""

import json
import os
from pathlib import Path

import pytest

from c2f.book.chapters import resolve_parameters
from c2f.book.compare import compare_metrics
from c2f.book.runner import NBVAL_REFERENCES, run_chapter

REFERENCES = sorted(NBVAL_REFERENCES.glob("[0-9][0-9]_*.json"))
RECORD_FIELDS = {"chapter", "profile", "params", "seed", "git_commit", "versions", "device", "started",
                 "wall_time_s", "metrics", "source_sha256"}


def _fresh_record(reference: Path, tmp_path_factory) -> dict:
    produced = Path(os.environ["C2F_RECORD_DIR"]) / reference.name
    if not produced.exists():
        out = tmp_path_factory.mktemp(reference.stem)
        run_chapter(reference.stem, "smoke", out_dir=out)
        produced = out / reference.name
    return json.loads(produced.read_text())


def test_every_chapter_has_a_reference():
    from c2f.book.chapters import chapter_paths

    assert {p.stem for p in chapter_paths()} == {r.stem for r in REFERENCES}


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda p: p.stem)
def test_reference_is_current(reference):
    """The committed reference was produced from the current chapter source and smoke parameters."""
    from c2f.book.runner import source_hash

    ref = json.loads(reference.read_text())
    assert RECORD_FIELDS <= ref.keys()
    assert ref["profile"] == "smoke"
    assert ref["source_sha256"] == source_hash(reference.stem, resolve_parameters(reference.stem, "smoke")), (
        f"{reference.stem} changed since its smoke reference was made: run `make refs`")


@pytest.mark.parametrize("reference", REFERENCES, ids=lambda p: p.stem)
def test_smoke_metrics_match_reference(reference, tmp_path_factory):
    ref = json.loads(reference.read_text())
    new = _fresh_record(reference, tmp_path_factory)
    assert new["params"] == ref["params"]
    deviations = compare_metrics(ref["metrics"], new["metrics"], ref["params"])
    assert not deviations, "metrics moved away from the reference:\n" + "\n".join(map(str, deviations))
