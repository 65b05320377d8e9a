"""Entry point for ``python -m webhookkit``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
