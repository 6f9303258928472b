"""Mutation check of the ELBO-term tests (issue 20 §1): scale one term of one objective by 0.99, run the tests,
record which test catches it; every term site in turn. Writes benchmarks/mutation_table.md.

A term site is every call that computes a KL, a log-likelihood or a penalty in the model files and in
c2f/objectives.py (``kl_divergence``, ``.log_prob``, ``kl_penalty``, ``covariance_penalty``, AIR's
``log_likelihood``, D-VAE's ``class_kl``, ``uniform_kl`` and ``log_joint_over_classes``, found in the syntax
tree), plus the terms that are not one call (listed in EXTRA: the reconstruction term of ``negative_elbo``, the
Quotient and Ladder posterior precisions, PCA-AE's squared error and penalty, MSVAE's ℓ1 term). Each mutant
is a copy of the package with that one expression wrapped as ``(0.99 * (...))`` (precisions: the log-variance shifted by
−log 0.99); the tests of the families that use the file run against it, stopping at the first failure.

    PYTHONPATH=$PWD nice -n 15 python benchmarks/mutate_terms.py  [--only FILE]
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = "tests/unit/test_elbo_terms.py"
TERM_CALLS = {"kl_divergence", "log_prob", "kl_penalty", "covariance_penalty", "log_likelihood", "class_kl",
              "uniform_kl", "log_joint_over_classes", "relaxed_kl"}
FILES = ["c2f/objectives.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "c2f/models").glob("*.py")
                                      if p.name not in ("__init__.py", "classifier.py", "factory.py"))]
# chapter 08's prefix measure (``code_order`` and every function inside it, ``log_px``): a likelihood, but no term of
# an objective
NOT_OBJECTIVE = {"code_order", "log_px"}
SHIFT = "0.010050335853501"  # −log 0.99: a log-variance + this is a precision × 0.99
EXTRA = {  # file: [(what, exact text, replacement)]
    "c2f/objectives.py": [("negative_elbo: −log p(x|z)", "recon_term = -terms.log_px.mean()",
                           "recon_term = -0.99 * terms.log_px.mean()")],
    "c2f/models/progressive.py": [("Quotient posterior precision 1/var1 − 1/var2",
                                   "logvar = logvar1 + var2.log() - gap.log()",
                                   f"logvar = logvar1 + var2.log() - gap.log() + {SHIFT}")],
    "c2f/models/layered.py": [("Ladder posterior precision (total)", "logvar = -torch.logaddexp(-lv_hat, -lv_p)",
                               f"logvar = -torch.logaddexp(-lv_hat, -lv_p) + {SHIFT}"),
                              ("Ladder posterior: the top-down precision", "torch.logaddexp(-lv_hat, -lv_p)",
                               f"torch.logaddexp(-lv_hat, -lv_p - {SHIFT})")],
    "c2f/models/pcaae.py": [("PCA-AE covariance penalty (its value)", "return (cov ** 2).mean()",
                             "return 0.99 * (cov ** 2).mean()"),
                            ("PCA-AE squared error in the loss",
                             "recon = ((self.decode(z) - x) ** 2).flatten(1).sum(-1).mean()",
                             "recon = 0.99 * ((self.decode(z) - x) ** 2).flatten(1).sum(-1).mean()"),
                            ("PCA-AE λ_cov · penalty in the loss", "self.cfg.cov_weight * cov",
                             "0.99 * self.cfg.cov_weight * cov")],
    "c2f/models/multistage.py": [("MSVAE ℓ1 term of stage 2", "self.cfg.l1_weight * l1",
                                  "0.99 * self.cfg.l1_weight * l1")],
}
FAMILIES_OF = {  # which test parameters exercise a file (None: every test)
    "c2f/objectives.py": None,
    "c2f/models/vae.py": ["vae", "vae_conv"],
    "c2f/models/progressive.py": ["progressive_", "quotient", "multiple"],
    "c2f/models/hierarchical.py": ["hvae", "markov_hvae", "lvae"],
    "c2f/models/layered.py": ["hvae", "markov_hvae", "lvae", "vlae", "svae", "msvae"],
    "c2f/models/vlae.py": ["vlae"], "c2f/models/sequential.py": ["svae"], "c2f/models/multistage.py": ["msvae"],
    "c2f/models/convdraw.py": ["convdraw"], "c2f/models/pixelvae.py": ["pixelcnn", "pixelvae", "pixelvae2"],
    "c2f/models/dvae.py": ["dvae", "dvae_st"], "c2f/models/air.py": ["air", "difference_air", "dair"],
    "c2f/models/pcaae.py": ["pcaae"],
}


def call_name(node: ast.Call) -> str | None:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def term_sites(path: str) -> list[tuple[str, int, int, int]]:
    """(description, line, start, end) character offsets into the file's text of every term call."""
    text = (ROOT / path).read_text()
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    lines = text.splitlines(keepends=True)

    def offset(lineno, col):  # ast columns count UTF-8 bytes
        return starts[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode())

    tree = ast.parse(text)
    funcs, measure = {}, set()  # node -> the innermost function around it (ast.walk visits outer functions first)
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef):
            funcs.update({id(node): fn.name for node in ast.walk(fn)})
            if fn.name in NOT_OBJECTIVE:  # everything inside, however deeply nested (code_order's sample, ...)
                measure.update(id(node) for node in ast.walk(fn))
    sites = []
    for node in ast.walk(tree):
        if id(node) in measure:
            continue
        if isinstance(node, ast.Call) and call_name(node) in TERM_CALLS:
            a, b = offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset)
            src = " ".join(text[a:b].split())
            sites.append((f"{funcs.get(id(node), '<module>')}: `{src[:70]}`", node.lineno, a, b))
    return sorted(sites, key=lambda s: s[2])


def mutants(path: str):
    """(description, line, mutated text) of every site of `path`."""
    text = (ROOT / path).read_text()
    for what, line, a, b in term_sites(path):
        yield what, line, text[:a] + "(0.99 * (" + text[a:b] + "))" + text[b:]
    for what, old, new in EXTRA.get(path, []):
        if text.count(old) != 1:
            raise SystemExit(f"EXTRA site {what!r}: {old!r} occurs {text.count(old)} times in {path}")
        yield what, text[:text.index(old)].count("\n") + 1, text.replace(old, new)


def test_ids(path: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", TESTS, "--collect-only", "-q", "-p", "no:cacheprovider"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    ids = [line for line in out.splitlines() if line.startswith(TESTS)]
    names = FAMILIES_OF[path]
    if names is None:
        return [TESTS]
    def wanted(test_id):
        name, _, param = test_id.split("::")[1].partition("[")
        param = param.rstrip("]")
        return any(n in name or param.startswith(n) for n in names)

    keep = [i for i in ids if wanted(i)]
    return keep


def run(package: Path, ids: list[str]) -> tuple[str, float]:
    """The first failing test against the mutated package (or '' when all pass), and the seconds it took."""
    env = {**os.environ, "PYTHONPATH": f"{package}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1", "C2F_THREADS": "1"}
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "pytest", *[str(ROOT / i) for i in ids], "-x", "-q", "-p",
                        "no:cacheprovider", "-rf"], cwd=package, env=env, capture_output=True, text=True)
    failed = re.findall(r"^FAILED \S*?::(\S+)", r.stdout, re.M)
    if r.returncode not in (0, 1):
        raise SystemExit(f"pytest could not run (exit {r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return (failed[0] if failed else ""), time.time() - t0


def read_table(path: Path) -> list[tuple]:
    """The rows (file, line, what, caught, seconds) of a table this script wrote."""
    rows = []
    for line in path.read_text().splitlines():
        m = re.match(r"\| (c2f/\S+?):(\d+) \| (.*) \| (.*) \|$", line)
        if m:
            caught = "" if m[4] == "**not caught**" else m[4]
            rows.append((m[1], int(m[2]), m[3].replace("\\|", "|"), caught, 0.0))
    return rows


def escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="one file, e.g. c2f/models/vae.py (its rows replace those in --out)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/mutation_table.md"))
    args = ap.parse_args()
    files = [args.only] if args.only else FILES
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp)
        shutil.copytree(ROOT / "c2f", package / "c2f")
        check = subprocess.run([sys.executable, "-c", "import c2f; print(c2f.__file__)"], capture_output=True,
                               text=True, cwd=package, env={**os.environ, "PYTHONPATH": str(package)}, check=True)
        assert check.stdout.startswith(tmp), f"the mutant package is not the one imported: {check.stdout}"
        for path in files:
            ids = test_ids(path)
            original = (ROOT / path).read_text()
            for what, line, text in mutants(path):
                (package / path).write_text(text)
                caught, seconds = run(package, ids)
                rows.append((path, line, what, caught, seconds))
                print(f"{path}:{line} {what} -> {caught or 'NOT CAUGHT'} ({seconds:.0f} s)", flush=True)
            (package / path).write_text(original)
    if args.only and Path(args.out).exists():  # keep the other files' rows of the table
        kept = [r for r in read_table(Path(args.out)) if r[0] != args.only]
        rows = sorted(kept + rows, key=lambda r: FILES.index(r[0]))
    missed = [r for r in rows if not r[3]]
    table = ["# Mutation check of the ELBO-term tests", "",
             f"Each row scales one term by 0.99 (`benchmarks/mutate_terms.py`) and runs `{TESTS}` (the tests of the "
             "families using the file, stopping at the first failure). "
             f"{len(rows) - len(missed)} of {len(rows)} term sites caught.", "",
             "| file:line | term site | first test that fails |", "|---|---|---|"]
    table += [f"| {p}:{line} | {escape(what)} | {caught or '**not caught**'} |" for p, line, what, caught, _ in rows]
    Path(args.out).write_text("\n".join(table) + "\n")
    print(f"{len(rows) - len(missed)}/{len(rows)} caught; table in {args.out}")


if __name__ == "__main__":
    main()
