"""``python -m bench.speed``: see :mod:`bench.speed.cli`."""

import sys

from bench.speed.cli import main

if __name__ == "__main__":
    sys.exit(main())
