"""Chapters, their declared parameters and their parameter profiles.

A chapter is ``notebooks/NN_name.py`` (jupytext py:percent). Its cell tagged ``parameters`` declares every
parameter with its default (the CPU-sized ``default`` profile). ``notebooks/NN_name.yml`` holds the other
profiles (``smoke`` for CI, ``gpu`` for ≤ 10 minutes on one GPU, ``full`` for paper scale), each a mapping that may only name declared parameters, and
``choices``: the allowed names of each parameter that names things (models, estimators, data sets; a list
parameter is checked element by element).

Values are checked before anything runs: their type against the declared default, names against
``choices``, and numbers by the parameter's name (:data:`MINIMUMS`): counts of epochs, samples, seeds,
steps and sizes must be at least 1, or at least 0 where the declaration's comment says what 0 means
(``train_size = 0  # training images (0 means all)``) and for warm-up epochs; a learning rate is positive.
"""

from __future__ import annotations

import ast
import fnmatch
import io
import re
import tokenize
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
PROFILES = ("smoke", "default", "gpu", "full")


SECTIONS = ("choices",)  # top-level keys of a profiles file that are not profiles

# parameter-name patterns -> (bound, strict): a count is >= 1 (>= 0 where 0 has a declared meaning)
MINIMUMS = {"lr": (0, True), "*_lr": (0, True), "*epochs*": (1, False), "*_size": (1, False),
            "*_sizes": (1, False), "iw_samples": (1, False), "*_samples": (1, False), "n_seeds": (1, False),
            "*_seeds": (1, False), "*_steps": (1, False)}
ZERO_MEANS = re.compile(r"\b0 (means|to skip|skips|gives)\b")


class ParameterError(ValueError):
    """A parameter or profile that the chapter does not declare, or a value of the wrong type or range."""


def chapter_paths() -> list[Path]:
    """Every chapter source, in book order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def chapter_path(chapter: str | Path) -> Path:
    """The source of a chapter given its stem (``01_vae``) or a path to it."""
    path = Path(chapter)
    if path.suffix != ".py":
        path = NOTEBOOKS / f"{path.name}.py"
    if not path.exists():
        known = ", ".join(p.stem for p in chapter_paths()) or "none"
        raise FileNotFoundError(f"no chapter {chapter!r} (looked for {path}); chapters: {known}")
    return path


def parameters_cell(path: Path) -> str:
    """The source of the cell tagged ``parameters`` in a py:percent notebook."""
    import jupytext

    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ParameterError(f"{path.name} must have exactly one cell tagged 'parameters' (found {len(cells)})")
    return cells[0].source


def declared_parameters(chapter: str | Path) -> dict[str, Any]:
    """The parameters a chapter declares, with their defaults (literal values only)."""
    path = chapter_path(chapter)
    params = {}
    for node in ast.parse(parameters_cell(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            try:
                params[name] = ast.literal_eval(node.value)
            except ValueError:
                raise ParameterError(f"{path.name}: parameter {name!r} must be a literal value, "
                                     f"not {ast.unparse(node.value)!r}") from None
        elif not isinstance(node, ast.Expr):  # docstrings/comments are fine; anything else is not
            raise ParameterError(f"{path.name}: the parameters cell may only assign literal values")
    return params


def declared_comments(chapter: str | Path) -> dict[str, str]:
    """The comment on each parameter's declaration line (``""`` when it has none)."""
    path = chapter_path(chapter)
    source = parameters_cell(path)
    comments = {t.start[0]: t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type == tokenize.COMMENT}
    return {node.targets[0].id: comments.get(node.lineno, "") for node in ast.parse(source).body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}


def _profiles_file(path: Path) -> dict[str, Any]:
    profiles_file = path.with_suffix(".yml")
    return (yaml.safe_load(profiles_file.read_text()) or {}) if profiles_file.exists() else {}


def profile_names(chapter: str | Path) -> list[str]:
    """``default`` and the profiles of the chapter's profiles file."""
    names = [p for p in _profiles_file(chapter_path(chapter)) if p not in SECTIONS]
    return ["default", *sorted(set(names) - {"default"})]


def declared_choices(chapter: str | Path) -> dict[str, list]:
    """The ``choices`` of the profiles file: parameter -> its allowed values."""
    path = chapter_path(chapter)
    choices = _profiles_file(path).get("choices") or {}
    declared = declared_parameters(path)
    for key, allowed in choices.items():
        if key not in declared or not isinstance(allowed, list):
            raise ParameterError(f"{path.with_suffix('.yml').name}: choices must map declared parameters to lists "
                                 f"of allowed values, not {key!r}: {allowed!r}")
    return choices


def profile_overrides(chapter: str | Path, profile: str) -> dict[str, Any]:
    """The values a profile sets (``default`` sets none: it is the declared defaults)."""
    path = chapter_path(chapter)
    profiles = _profiles_file(path)
    if profile == "default":
        return dict(profiles.get("default") or {})
    if profile not in profiles or profile in SECTIONS:
        raise ParameterError(f"{path.stem} has no profile {profile!r}; profiles: {profile_names(path)} "
                             f"({path.with_suffix('.yml')})")
    return dict(profiles[profile] or {})


def _parse(text: str, default: Any) -> Any:
    """A command-line string as a value: YAML, except that '1e-3' is a float where a float is declared."""
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            return text
    return yaml.safe_load(text)


def _check_type(chapter: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool) or default is None:
        ok = isinstance(value, bool) if isinstance(default, bool) else True
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    else:
        ok = isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))
    if not ok:
        raise ParameterError(
            f"{chapter}: parameter {key!r} must be {type(default).__name__} like its default {default!r}, "
            f"got {value!r} ({type(value).__name__})")
    return value


def resolve_parameters(chapter: str | Path, profile: str = "default",
                       overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the profile's values, then `overrides`; every key checked against the declaration.

    String overrides (as given on a command line) are parsed as YAML, so ``5`` is an int, ``1e-3`` a
    float, ``[64, 32]`` a list. An unknown key or a value of the wrong type raises :class:`ParameterError`
    naming it.
    """
    path = chapter_path(chapter)
    declared = declared_parameters(path)
    params = dict(declared)
    for source, values in ((f"profile {profile!r}", profile_overrides(path, profile)),
                           ("the overrides", overrides or {})):
        for key, value in values.items():
            if key not in declared:
                raise ParameterError(
                    f"{path.stem}: unknown parameter {key!r} in {source}; declared: {', '.join(declared)}")
            if isinstance(value, str) and not isinstance(declared[key], str):
                value = _parse(value, declared[key])
            params[key] = _check_type(path.stem, key, value, declared[key])
    if "profile" in declared:
        params["profile"] = profile
    check_values(path, params)
    return params


def minimum(key: str, comment: str = "") -> tuple[float, bool] | None:
    """The lower bound of a numeric parameter by its name, and whether it is strict; None when unbounded."""
    for pattern, (bound, strict) in MINIMUMS.items():
        if fnmatch.fnmatchcase(key, pattern):
            if bound == 1 and ("warmup" in key or ZERO_MEANS.search(comment)):
                bound = 0
            return bound, strict
    return None


def check_values(chapter: str | Path, params: dict[str, Any]) -> None:
    """Names from the declared ``choices`` and numbers within :func:`minimum`; a :class:`ParameterError`
    naming the parameter otherwise."""
    path = chapter_path(chapter)
    choices, comments = declared_choices(path), declared_comments(path)
    for key, value in params.items():
        values = value if isinstance(value, list) else [value]
        if key in choices:
            unknown = [v for v in values if v not in choices[key]]
            if unknown:
                raise ParameterError(f"{path.stem}: parameter {key!r} has unknown value(s) {unknown}; "
                                     f"choose from {choices[key]}")
        bound = minimum(key, comments.get(key, ""))
        if bound is None:
            continue
        low, strict = bound
        bad = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
               and (v <= low if strict else v < low)]
        if bad:
            rule = f"> {low}" if strict else f">= {low}"
            raise ParameterError(f"{path.stem}: parameter {key!r} must be {rule}, got {value!r}")
