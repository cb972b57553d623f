"""``python -m runner`` / the ``runner`` console script."""

import sys

from runner.cli import main as _cli_main


def main() -> None:
    """Console-script entry point: exits with the CLI's status."""
    sys.exit(_cli_main())


if __name__ == "__main__":
    main()
