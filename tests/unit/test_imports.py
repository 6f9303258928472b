"""The package's import structure, read from the source with ``ast``: the science modules of ``c2f`` never
import the book machinery (``c2f.book``) except the ``Run`` record a chapter starts with, and no two ``c2f``
modules import each other, directly or through others (the runner hands the executors their worker)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "c2f"
BOOK = "c2f.book"
RECORD = ("c2f.book.records", "Run")  # the one name of the book a science module may import: c2f.Run


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for every import in `name`, at any depth (also those inside
    functions), relative ones resolved; ``from c2f import x`` of a submodule `x` counts as importing it."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub, None, node.lineno) if sub in MODULES else (base, alias.name, node.lineno))
    return [(module, what, line) for module, what, line in found if module == "c2f" or module.startswith("c2f.")]


def is_science(name: str) -> bool:
    return not (name == BOOK or name.startswith(BOOK + ".") or name == "c2f.__main__")


def test_the_science_never_imports_the_book_but_the_record():
    offences = [f"{MODULES[name].relative_to(PACKAGE.parent)}:{line} imports {module}" + (f".{what}" if what else "")
                for name in MODULES if is_science(name)
                for module, what, line in imports(name)
                if (module == BOOK or module.startswith(BOOK + ".")) and (module, what) != RECORD]
    assert not offences, "the science imports the book machinery:\n" + "\n".join(offences)


def test_the_split_is_as_named():
    """The check above covers the modules it means: the book machinery is where the test looks for it."""
    book = {n for n in MODULES if not is_science(n)}
    assert {"c2f.book.runner", "c2f.book.executors", "c2f.book.chapters", "c2f.book.records", "c2f.book.compare",
            "c2f.book.stale_pages", "c2f.book.cli"} <= book
    assert {"c2f.train", "c2f.experiment", "c2f.models", "c2f.findings", "c2f.utils"} <= set(MODULES) - book
    assert imports("c2f") == [(*RECORD, imports("c2f")[0][2])]  # the package exports c2f.Run and nothing else


def cycles() -> list[list[str]]:
    """Every import circle among c2f modules, each once, as the modules around it. An import of a module's own
    package (``import c2f`` in ``c2f.utils``) is no edge: Python has run that ``__init__`` before the module."""
    graph = {name: sorted({m for m, _, _ in imports(name) if m in MODULES and not name.startswith(m + ".")
                           and m != name}) for name in MODULES}
    found, seen = [], set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in path:
                circle = path[path.index(nxt):]
                key = frozenset(circle)
                if key not in seen:
                    seen.add(key)
                    found.append(circle + [nxt])
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in graph:
        visit(start, [start])
    return found


def test_no_import_circles():
    found = cycles()
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_executors_never_import_the_runner():
    assert "c2f.book.runner" not in {m for m, _, _ in imports("c2f.book.executors")}


def test_a_kernel_imports_only_the_record_of_the_book():
    """Every chapter's kernel imports ``c2f`` (for ``c2f.Run``): of the book it must load the record and the
    chapter parser the record reads, not the runner or the executors, whose changes would otherwise make
    every page stale (the record's ``code_sha256`` lists the c2f files a kernel imported)."""
    loaded, todo = set(), ["c2f"]
    while todo:
        name = todo.pop()
        if name not in loaded:
            loaded.add(name)
            todo += [m for m, _, _ in imports(name) if m in MODULES]
            todo += [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]  # its packages
    assert {n for n in loaded if not is_science(n)} == {"c2f.book", "c2f.book.records", "c2f.book.chapters"}
