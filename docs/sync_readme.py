"""Regenerates the README sections that come from the code (the scheme table)."""

import pathlib
import re

import jinit

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def main() -> None:
    text = README.read_text(encoding="utf-8")
    table = jinit.markdown_table()
    new = re.sub(
        r"(<!-- schemes:start -->).*?(<!-- schemes:end -->)",
        lambda m: m.group(1) + "\n" + table + "\n" + m.group(2),
        text,
        flags=re.S,
    )
    README.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
