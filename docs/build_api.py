"""Builds the API reference (HTML) from the docstrings with pdoc.

    python docs/build_api.py                 # writes docs/api/ (git-ignored)
    python docs/build_api.py -o /tmp/api     # elsewhere

Every public module of ``jinit`` is rendered: the package itself and each
submodule whose name does not start with ``_``. ``jinit/__init__.py`` defines
``__all__``, so ``pdoc jinit`` alone would render only ``jinit.html``; the
submodules are therefore passed explicitly. Docstrings are Google style with
reST roles and ``.. math::`` blocks (rendered by MathJax, ``--math``).

Any warning pdoc emits (an include that fails, a malformed section, an import
that fails, ...) is printed and makes the script exit with status 1, and so does
reST markup that pdoc silently leaves verbatim in a rendered docstring (a role
such as ``:math:`...``` broken over two lines, an unknown directive, a reST
simple table): CI (tests/test_docs.py) keeps the reference clean.
"""

from __future__ import annotations

import argparse
import importlib
import pathlib
import pkgutil
import re
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "api"
PACKAGE = "jinit"


def public_modules(package: str = PACKAGE) -> list[str]:
    """``package`` and all its submodules (recursively) without a ``_``-prefixed part."""
    pkg = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return sorted(names)


def build(output: pathlib.Path = DEFAULT_OUTPUT, modules: list[str] | None = None) -> list[str]:
    """Renders the reference into ``output``; returns the warning messages (empty if clean)."""
    import pdoc
    import pdoc.render

    modules = modules or public_modules()
    pdoc.render.configure(
        docformat="google",
        math=True,
        search=True,
        show_source=True,
        footer_text=f"{PACKAGE} API reference",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*modules, output_directory=pathlib.Path(output))
    messages = []
    for w in caught:
        # Third-party deprecation noise raised while importing dependencies is not ours.
        if issubclass(w.category, DeprecationWarning) and PACKAGE not in str(w.filename):
            continue
        messages.append(f"{w.category.__name__}: {w.message}")
    return messages


_DOCSTRING = re.compile(r'<div class="docstring">(.*?)</div>', re.S)
_CODE = re.compile(r"<pre>.*?</pre>", re.S)
_LEFTOVER = re.compile(
    r":(?:func|mod|class|meth|attr|data|obj|exc|math):(?:`|<code>)"  # a reST role left as is (e.g. split over lines)
    r"|^\.\. [\w-]+::"  # a directive it does not know
    r"|={4,}[ \t]+={4,}",  # a reST simple table (use a Markdown table)
    re.M,
)


def rendering_problems(output: pathlib.Path) -> list[str]:
    """reST markup left verbatim in the rendered docstrings (pdoc does not warn about these)."""
    problems = []
    for page in sorted(pathlib.Path(output).rglob("*.html")):
        for doc in _DOCSTRING.findall(page.read_text(encoding="utf-8")):
            text = _CODE.sub("", doc)
            for match in _LEFTOVER.finditer(text):
                snippet = " ".join(text[max(0, match.start() - 60) : match.end() + 40].split())
                problems.append(f"{page.relative_to(output)}: unrendered reST {match.group(0)!r} in '...{snippet}...'")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=pathlib.Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    modules = public_modules()
    messages = build(args.output, modules)
    messages += [f"rendering: {m}" for m in rendering_problems(args.output)]
    for m in messages:
        print(f"warning: {m}", file=sys.stderr)
    print(f"{len(modules)} modules -> {args.output} ({len(messages)} warnings)")
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main())
