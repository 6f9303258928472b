"""Chapters, their declared parameters, their schema and their parameter profiles.

A chapter is ``notebooks/NN_name.py`` (jupytext py:percent). Its cell tagged ``parameters`` declares every
parameter with its default (the CPU-sized ``default`` profile). ``notebooks/NN_name.yml`` holds the other
profiles (``smoke`` for CI, ``gpu`` for ≤ 10 minutes on one GPU, ``full`` for paper scale), each a mapping that
may only name declared parameters, and ``schema``: one entry per declared parameter (a test fails for an
undeclared or a missing one) with its ``type`` (``int``, ``float``, ``bool``, ``str``, ``seed`` or ``list``
of ``of``), bounds ``min``/``max`` (inclusive) or ``gt`` (exclusive), ``zero`` (what 0 means, allowed beside
the bounds), ``min_len``/``max_len`` of a list, ``choices`` (element by element for a list) and ``data`` (where
a size's maximum comes from, quoted when it is exceeded). A bound may name another parameter
(``digit_size: {max: canvas}``). Numbers must be finite; a seed lies in ``[0, SEED_MAX]``.

Values are checked before anything runs, against the declared default's type and the schema; a
:class:`ParameterError` names the parameter, the value and the rule.
"""

from __future__ import annotations

import ast
import io
import math
import tokenize
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = PROJECT_ROOT / "notebooks"
PROFILES = ("smoke", "default", "gpu", "full")


# top-level keys of a profiles file that are not profiles (``shrink``: applied on top of ``full`` by
# tests/regression/test_full_profile.py, never a profile of its own)
SECTIONS = ("schema", "shrink")
SEED_MAX = 2**31 - 1  # torch, numpy and random all accept seed + i for any i below this again
TYPES = {"int": int, "float": float, "bool": bool, "str": str, "seed": int, "list": list}
SCHEMA_KEYS = {"type", "of", "min", "max", "gt", "zero", "min_len", "max_len", "choices", "data"}


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


def declared_schema(chapter: str | Path) -> dict[str, dict]:
    """The ``schema`` of the profiles file: parameter -> its rules; every declared parameter has one entry,
    of the type of its default, and nothing else has one."""
    path = chapter_path(chapter)
    where = path.with_suffix(".yml").name
    schema = _profiles_file(path).get("schema") or {}
    declared = declared_parameters(path)
    missing, extra = [k for k in declared if k not in schema], [k for k in schema if k not in declared]
    if missing or extra:
        raise ParameterError(f"{where}: the schema must have one entry per declared parameter; "
                             f"missing {missing}, not declared {extra}")
    for key, rule in schema.items():
        unknown = set(rule) - SCHEMA_KEYS if isinstance(rule, dict) else {"(not a mapping)"}
        kind = TYPES.get(rule.get("type")) if not unknown else None
        default = declared[key]
        if unknown or kind is None or type(default) is not kind or ("of" in rule) != (kind is list):
            raise ParameterError(f"{where}: schema of {key!r} ({rule!r}) must be a mapping of {sorted(SCHEMA_KEYS)} "
                                 f"with a type of {list(TYPES)} matching its default {default!r} (a list with `of`)")
    return schema


def declared_choices(chapter: str | Path) -> dict[str, list]:
    """The ``choices`` of the schema: parameter -> its allowed values."""
    return {k: rule["choices"] for k, rule in declared_schema(chapter).items() if "choices" in rule}


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


def check_values(chapter: str | Path, params: dict[str, Any]) -> None:
    """Every value against its :func:`declared_schema` entry; a :class:`ParameterError` naming the parameter,
    the value and the rule otherwise."""
    path = chapter_path(chapter)
    for key, rule in declared_schema(path).items():
        if key in params:
            problem = _break(rule, params[key], params)
            if problem:
                raise ParameterError(f"{path.stem}: parameter {key!r} {problem}")


def _bound(bound: Any, params: dict[str, Any]) -> tuple[Any, str]:
    """A bound and how to name it: a number, or the value of the parameter it names."""
    return (params[bound], f"{bound} ({params[bound]!r})") if isinstance(bound, str) else (bound, repr(bound))


def _break(rule: dict, value: Any, params: dict[str, Any]) -> str | None:
    """What `value` breaks of `rule`, or None."""
    values = value if rule["type"] == "list" else [value]
    if rule["type"] == "list":
        low, high = rule.get("min_len", 1), rule.get("max_len")
        if len(value) < low or (high is not None and len(value) > high):
            return f"must have {low} to {high if high is not None else 'any number of'} elements, got {value!r}"
        kind = TYPES[rule["of"]]
        wrong = [v for v in value if not (isinstance(v, kind) and isinstance(v, bool) == (kind is bool)
                                          or kind is float and isinstance(v, int) and not isinstance(v, bool))]
        if wrong:
            return f"must be a list of {rule['of']}, got {value!r} ({wrong} are not)"
    if "choices" in rule:
        unknown = [v for v in values if v not in rule["choices"]]
        return f"has unknown value(s) {unknown}; choose from {rule['choices']}" if unknown else None
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if any(not math.isfinite(v) for v in numbers):
        return f"must be a finite number, got {value!r}"
    if rule["type"] == "seed" and not 0 <= value <= SEED_MAX:
        return f"must be a seed from 0 to {SEED_MAX} (what torch and numpy accept), got {value!r}"
    for v in numbers:
        if v == 0 and "zero" in rule:
            continue
        for name, fails, word in (("gt", lambda b: v <= b, ">"), ("min", lambda b: v < b, ">="),
                                  ("max", lambda b: v > b, "<=")):
            if name in rule:
                bound, said = _bound(rule[name], params)
                if fails(bound):
                    zero = f" or 0 ({rule['zero']})" if "zero" in rule else ""
                    data = f" ({rule['data']})" if name == "max" and "data" in rule else ""
                    return f"must be {word} {said}{data}{zero}, got {value!r}"
    return None
