"""Command line: ``python -m c2f {run,list,book,refs}``.

    python -m c2f run notebooks/01_vae.py --profile full -p epochs_conv 50 -p n_seeds 3
    python -m c2f run 01_vae --profile smoke --out /tmp/try --allow-dirty
    python -m c2f list            # chapters, profiles, parameters, and why a page is stale
    python -m c2f book            # execute stale chapters with this machine's profile, build the HTML
    python -m c2f refs            # regenerate the nbval references (smoke profile) in tests/notebooks

Exit codes: 0 done; 1 a chapter failed (its own error first, its notebook kept as NN.failed.ipynb); 2 a usage
error found before anything ran (a parameter, profile or chapter, uncommitted code for the book, an output or
cache folder that cannot be written); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from c2f.book.chapters import PROFILES, ParameterError, chapter_path, chapter_paths, declared_parameters, profile_names
from c2f.book.executors import EXECUTORS, ChaptersFailed
from c2f.book.runner import BOOK_CHAPTERS, ChapterFailed, DirtyTreeError, FolderError, build_book, can_run_here, \
    is_stale, machine_profile, record_path, regenerate_references, run_chapter


def _list() -> None:
    for path in chapter_paths():
        record = record_path(path)
        profiles = [p for p in PROFILES if p in profile_names(path)]
        if record.exists():
            r = json.loads(record.read_text())
            reasons = is_stale(path)
            state = "STALE" if reasons else "up to date"
            if reasons and not can_run_here(r["profile"]):
                state += f" (and profile {r['profile']!r} cannot run on this machine: the page stays as it is)"
            status = f"page: profile {r['profile']}, {len(r['metrics'])} metrics, {r['wall_time_s']} s, {state}"
        else:
            reasons, status = [], "page: missing"
        print(f"{path.stem:24s} profiles: {', '.join(profiles):27s} {status}")
        for reason in reasons:
            print(f"{'':24s}   stale: {reason}")
        print(f"{'':24s} parameters: {', '.join(declared_parameters(path))}")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m c2f", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one chapter (jupytext -> papermill -> record)")
    run.add_argument("notebook", help="chapter source (notebooks/01_vae.py) or stem (01_vae)")
    run.add_argument("--profile", default=None, choices=PROFILES, help=f"default: {machine_profile()} here")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="override one parameter (repeatable); VALUE is parsed as YAML")
    run.add_argument("--out", default=str(BOOK_CHAPTERS), help="folder for the executed notebook and record")
    run.add_argument("--allow-dirty", action="store_true",
                     help="run from uncommitted code even into the book (the record says dirty)")
    sub.add_parser("list", help="chapters, their profiles and parameters, and the state of their pages")
    book = sub.add_parser("book", help="execute chapters whose page is missing or stale, then build the book")
    book.add_argument("--profile", default=None, choices=PROFILES, help="default: this machine's")
    book.add_argument("--force", action="store_true", help="re-execute every chapter")
    refs = sub.add_parser("refs", help="regenerate the smoke-profile nbval references in tests/notebooks")
    refs.add_argument("chapters", nargs="*")
    for p in (book, refs):
        p.add_argument("--jobs", type=_positive, default=None, help="chapters at a time (default: one per GPU when "
                       "several are visible, else one per CPU core, each with cores // jobs threads)")
        p.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local processes, SLURM jobs through submitit, or submitit's local executor")
        p.add_argument("--cluster-config", default=None, help="submitit parameters (default: cluster.yml)")
    args = parser.parse_args(argv)
    if argv is None:  # SIGTERM unwinds like Ctrl-C: temporary folders and the kernel go, one line is printed
        signal.signal(signal.SIGTERM, signal.default_int_handler)

    try:
        if args.command == "run":
            path = chapter_path(args.notebook)
            record = run_chapter(path, args.profile or machine_profile(), dict(args.param), out_dir=args.out,
                                 allow_dirty=args.allow_dirty)
            print(f"{path.stem}: {len(record['metrics'])} metrics in {record['wall_time_s']} s -> "
                  f"{Path(args.out) / (path.stem + '.ipynb')}")
        elif args.command == "list":
            _list()
        elif args.command in ("book", "refs"):
            execution = dict(jobs=args.jobs, executor=args.executor, cluster_config=args.cluster_config)
            if args.command == "book":
                build_book(args.profile, args.force, **execution)
            else:
                regenerate_references(args.chapters or None, **execution)
    except (ParameterError, FileNotFoundError, DirtyTreeError, FolderError) as err:  # usage errors: nothing ran
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ChapterFailed, ChaptersFailed) as err:  # the chapters' own errors last, not papermill's traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: {args.command} stopped (trained epochs are checkpointed; a re-run resumes)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
