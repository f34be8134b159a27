"""Writes every notebook ``NN_name.ipynb`` in this folder from its text source ``NN_name.py``.

The text sources (jupytext percent format: ``# %%`` starts a code cell, ``# %% [markdown]`` a
markdown cell) are what people edit; the ``.ipynb`` files are generated from them, without
outputs, with stable cell ids and deterministic JSON, so that regenerating is byte-identical:

    python notebooks/sync.py              # rewrite every notebook from its .py
    python notebooks/sync.py 02 05        # only the notebooks whose names start with 02 or 05
    python notebooks/sync.py --check      # exit 1 if a notebook differs from its .py (writes nothing)
    python notebooks/sync.py --execute --keep /tmp/executed 02   # also run them, keep executed copies

Adding a notebook is adding one ``NN_name.py`` here and running this script. CI executes
every notebook (tests/test_notebooks.py); tests/test_docs.py checks that each ``.ipynb``
equals what this script writes.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jupytext
import nbformat

HERE = pathlib.Path(__file__).resolve().parent
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def sources(folder: pathlib.Path = HERE) -> list[pathlib.Path]:
    """The notebooks' text sources: every ``NN_name.py`` in ``folder``, sorted."""
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def build(source: pathlib.Path) -> nbformat.NotebookNode:
    """The notebook of the text source ``source``: its cells, no outputs, stable ids."""
    text = jupytext.reads(source.read_text(encoding="utf-8"), fmt="py:percent")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": dict(text.metadata.get("kernelspec", KERNELSPEC)),
        "language_info": {"name": "python"},
    }
    prefix = source.stem.split("_")[0]
    for i, cell in enumerate(text.cells):
        new = nbformat.v4.new_code_cell if cell.cell_type == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(new(cell.source, metadata=dict(cell.metadata), id=f"{prefix}-{i:02d}"))
    nbformat.validate(nb)
    return nb


def render(source: pathlib.Path) -> str:
    """The ``.ipynb`` text of ``source``, exactly as written to disk."""
    return nbformat.writes(build(source)) + "\n"


def execute(path: pathlib.Path, keep: pathlib.Path | None) -> tuple[float, float]:
    """Runs the notebook; returns (wall seconds, CPU seconds of the kernel process)."""
    import resource

    import nbclient

    nb = nbformat.read(path, as_version=4)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        if keep is not None:  # also after an error, to inspect it
            keep.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, keep / path.name)
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel has exited and been reaped
    return wall, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="notebook name prefixes, e.g. 01 03 (default: all)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a notebook is stale")
    parser.add_argument("--execute", action="store_true", help="run each notebook and report its time")
    parser.add_argument("--keep", type=pathlib.Path, help="with --execute: save executed copies here")
    args = parser.parse_args(argv)
    stale: list[str] = []
    for source in sources():
        if args.only and not any(source.stem.startswith(p) for p in args.only):
            continue
        path, text = source.with_suffix(".ipynb"), render(source)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path.relative_to(HERE.parent)}")
        if args.execute and not args.check:
            wall, cpu = execute(path, args.keep)
            print(f"{path.name}: executed in {wall:.1f} s wall, {cpu:.1f} s CPU (kernel)", flush=True)
    known = {source.stem for source in sources()}
    stale += [p.name + " (no text source)" for p in sorted(HERE.glob("*.ipynb")) if p.stem not in known]
    if args.check and stale:
        print(f"stale (run `python notebooks/sync.py`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
