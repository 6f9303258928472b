"""Chapters, their declared parameters and their parameter profiles.

A chapter is ``notebooks/NN_name.py`` (jupytext py:percent). Its cell tagged ``parameters`` declares every
parameter with its default (the CPU-sized ``default`` profile). ``notebooks/NN_name.yml`` holds the other
profiles (``smoke`` for CI, ``gpu`` for ≤ 10 minutes on one GPU, ``full`` for paper scale), each a mapping that may only name declared parameters.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
PROFILES = ("smoke", "default", "gpu", "full")


class ParameterError(ValueError):
    """A parameter or profile that the chapter does not declare, or a value of the wrong type."""


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


def profile_overrides(chapter: str | Path, profile: str) -> dict[str, Any]:
    """The values a profile sets (``default`` sets none: it is the declared defaults)."""
    path = chapter_path(chapter)
    profiles_file = path.with_suffix(".yml")
    profiles = yaml.safe_load(profiles_file.read_text()) if profiles_file.exists() else {}
    profiles = profiles or {}
    if profile == "default":
        return dict(profiles.get("default") or {})
    if profile not in profiles:
        raise ParameterError(
            f"{path.stem} has no profile {profile!r}; profiles: {['default', *sorted(profiles)]} ({profiles_file})")
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
    return params
