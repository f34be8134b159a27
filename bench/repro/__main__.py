"""``python -m bench.repro NAME [--out DIR] [--quick]``: run one reproduction (see :mod:`bench.repro`)."""

from __future__ import annotations

import argparse
import os
import sys

from bench.repro import REPRODUCTIONS, get


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.repro",
        description="Reproduce a published claim (theory against measurement): writes figures and NAME.md.",
        epilog="reproductions:\n" + "\n".join(f"  {k:<16} {v[1]}" for k, v in REPRODUCTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", choices=list(REPRODUCTIONS), metavar="NAME", help="which reproduction (listed below).")
    p.add_argument("--out", metavar="DIR", help="output directory (default results/repro-NAME).")
    p.add_argument("--quick", action="store_true", help="a seconds-long version (checks the pipeline, not the claim).")
    args = p.parse_args(argv)
    out = args.out or os.path.join("results", f"repro-{args.name}")
    os.makedirs(out, exist_ok=True)
    for path in get(args.name)(out, quick=args.quick):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
