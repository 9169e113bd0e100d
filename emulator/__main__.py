"""``python -m emulator`` and the ``stcp-link`` console script."""

import sys

from emulator.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
