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
    assert _section(readme, "schemes") == jinit.markdown_table(), (
        "README's scheme table is stale: run `python docs/sync_readme.py`"
    )


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
