"""Entry point for ``python -m webhookkit``."""

import sys

from .cli import main

sys.exit(main())
