"""``python -m vigil``: the same command line as the ``vigil`` script."""

from __future__ import annotations

from vigil.cli import main

if __name__ == "__main__":
    main()
