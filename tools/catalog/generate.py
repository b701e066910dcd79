#!/usr/bin/env python3
"""Regenerates src/catalog/data/ from the source documents.

Usage: python3 tools/catalog/generate.py [--shared DIR] [--out DIR] [--check]

--shared   the folder holding seeds/ and reference/ (default: ../shared beside the repo)
--out      where the TSV files go (default: src/catalog/data)
--check    write nothing; exit 1 if the committed files differ from what would be written

Each system has its own module here (stalwart.py, dovecot.py, exim.py, qmail.py) with a
function generate(shared: pathlib.Path) -> dict[str, str] returning file name -> content;
taxonomy.py runs last and receives the event files the others produced.
"""

import argparse
import importlib
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
SYSTEM_MODULES = ["stalwart", "dovecot", "exim", "qmail"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=pathlib.Path, default=REPO.parent / "shared")
    ap.add_argument("--out", type=pathlib.Path, default=REPO / "src" / "catalog" / "data")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.shared / "seeds").is_dir():
        print(f"generate.py: {args.shared}/seeds not found (use --shared)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(HERE))
    files: dict[str, str] = {}
    for name in SYSTEM_MODULES:
        module = importlib.import_module(name)
        files.update(module.generate(args.shared))
    taxonomy = importlib.import_module("taxonomy")
    files.update(taxonomy.generate(args.shared, dict(files)))
    stale = []
    for file_name, content in sorted(files.items()):
        path = args.out / file_name
        old = path.read_text(encoding="utf-8") if path.exists() else None
        if old != content:
            stale.append(file_name)
            if not args.check:
                path.write_text(content, encoding="utf-8")
    if args.check:
        for f in stale:
            print(f"generate.py: {f} is out of date", file=sys.stderr)
        return 1 if stale else 0
    for f in stale:
        print(f"wrote {args.out / f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
