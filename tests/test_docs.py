"""The docs are generated from the code and build cleanly."""

import pathlib
import subprocess
import sys

import pytest

import jinit

ROOT = pathlib.Path(__file__).parent.parent


def _section(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    assert start in text and end in text, f"README lacks the {name} markers"
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def test_readme_scheme_table_matches_registry():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert _section(readme, "schemes") == jinit.registry.markdown_table(), (
        "README's scheme table is stale: run `python docs/build_pages.py`"
    )


def test_readme_examples_run():
    """Every `>>>` example in README.md runs and prints what it shows."""
    import doctest

    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, optionflags=flags, verbose=False)
    assert result.attempted > 20 and result.failed == 0, result


def test_public_api_is_documented():
    for name in jinit.__all__:
        obj = getattr(jinit, name)
        if callable(obj) and not isinstance(obj, type(jinit)):
            assert obj.__doc__ and obj.__doc__.strip(), f"jinit.{name} has no docstring"


def test_api_reference_builds_without_warnings(tmp_path):
    """docs/build_api.py renders jinit and every public submodule, warning-free."""
    pytest.importorskip("pdoc")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "build_api.py"), "-o", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "warn" not in proc.stderr.lower(), proc.stderr
    assert (tmp_path / "jinit.html").exists()
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import build_api
    finally:
        sys.path.remove(str(ROOT / "docs"))
    modules = build_api.public_modules()
    assert "jinit.variance" in modules and not any("._" in m for m in modules)
    for module in modules:
        page = tmp_path.joinpath(*module.split(".")).with_suffix(".html")
        assert page.exists(), f"no API page for {module}"


def _load(path: pathlib.Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_pages_match_readme_and_registry():
    """docs/schemes.md and docs/common_mistakes.md are rendered from README.md and jinit.SCHEMES."""
    pages = _load(ROOT / "docs" / "build_pages.py", "build_pages")
    for name, text in pages.generated_pages().items():
        path = ROOT / "docs" / name
        assert path.exists() and path.read_text(encoding="utf-8") == text, (
            f"docs/{name} is stale: run `python docs/build_pages.py`"
        )


def test_docs_images_exist():
    """Every image a docs page references is in the repository."""
    import re

    for page in (ROOT / "docs").glob("*.md"):
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} references missing {target}"


def test_notebooks_match_text_sources_and_have_no_outputs():
    """notebooks/NN_name.ipynb is exactly what notebooks/sync.py writes from NN_name.py (no outputs, stable ids)."""
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("jupytext")
    sync = _load(ROOT / "notebooks" / "sync.py", "notebooks_sync")
    sources = sync.sources(ROOT / "notebooks")
    assert sources, "no notebook text sources (notebooks/NN_name.py)"
    on_disk = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert on_disk == [s.stem for s in sources], (
        "every notebooks/*.ipynb needs its text source NN_name.py and vice versa: run `python notebooks/sync.py`"
    )
    for source in sources:
        path = source.with_suffix(".ipynb")
        assert path.read_text(encoding="utf-8") == sync.render(source), (
            f"{path.name} differs from {source.name}: run `python notebooks/sync.py`"
        )
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        for i, cell in enumerate(nb.cells):
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} cell {i} has outputs"
            if cell.cell_type == "code":  # a syntax error is caught here, before a slow execution
                compile(cell.source, f"{source.name} cell {i}", "exec")
