"""pyproject.toml and environment.yml pin the same packages at the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!-]+$")


def pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for group in project.get("optional-dependencies", {}).values():
        pins += group
    return set(pins)


def environment_pins() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip) == 1, "environment.yml must have one pip section"
    return {p for p in pip[0] if p != "-e ."}


def test_every_dependency_is_an_exact_pin():
    for pin in pyproject_pins() | environment_pins():
        assert PIN.match(pin), f"not an exact pin: {pin!r}"


def test_pyproject_and_environment_list_the_same_pins():
    py, env = pyproject_pins(), environment_pins()
    assert py == env, f"only in pyproject.toml: {sorted(py - env)}; only in environment.yml: {sorted(env - py)}"


def test_environment_installs_the_package_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip


def test_installed_versions_match_the_pins():
    """The environment the tests run in is the pinned one (torch and friends may carry a local +cuXXX)."""
    from importlib.metadata import PackageNotFoundError, version

    for pin in pyproject_pins():
        name, wanted = pin.split("==")
        try:
            got = version(name)
        except PackageNotFoundError:
            continue  # an optional group that is not installed here
        assert got.split("+")[0] == wanted, f"{name}: installed {got}, pinned {wanted}"
