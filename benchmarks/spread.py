"""Measure how far a chapter's smoke metrics move between "machines": the spread behind c2f.book.compare.TOLERANCES.

    python benchmarks/spread.py 05_discrete            # every configuration below, one run at a time
    python benchmarks/spread.py 01_vae --configs native avx2

Each configuration re-runs the smoke profile from scratch (fresh checkpoint cache, one thread, no progress
bars, as the references) with torch's CPU kernels capped by environment variables. The table prints, per
row of TOLERANCES, the largest difference between any two runs and the committed reference, beside the
tolerance. A new chapter runs this once and adds rows to TOLERANCES for the metrics it introduces.
This is a measurement, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from collections import defaultdict

from c2f.book.compare import tolerance_for
from c2f.book.runner import NBVAL_REFERENCES, REFERENCE_ENV, record_path, run_chapter

CONFIGS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "baseline": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
    "threads2": {"C2F_THREADS": "2"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapter")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    runs = [json.loads(record_path(args.chapter, NBVAL_REFERENCES).read_text())["metrics"]]
    for name in args.configs:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**REFERENCE_ENV, "C2F_CACHE": f"{tmp}/cache", **CONFIGS[name]}
            record = run_chapter(args.chapter, "smoke", out_dir=f"{tmp}/out", env=env)
        print(f"{name}: {record['wall_time_s']} s", flush=True)
        runs.append(record["metrics"])
    spread = defaultdict(lambda: (0.0, ""))
    for name in runs[0]:
        row = tolerance_for(name)
        values = [r[name] for r in runs if name in r]
        d = max(abs(a - b) for a, b in itertools.combinations(values, 2)) if len(values) > 1 else 0.0
        key = f"{row.kind} (tolerance {row.abs:g})" if row else "NO ROW OF TOLERANCES"
        spread[key] = max(spread[key], (d, name))
    for kind, (d, name) in sorted(spread.items()):
        print(f"{kind:64s} spread {d:<10.3g} ({name})")


if __name__ == "__main__":
    main()
