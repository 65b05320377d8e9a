"""``python -m benchmarks`` (``make bench``): every scenario; ``--quick`` for the smoke run."""

from __future__ import annotations

import sys

from benchmarks.harness import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
