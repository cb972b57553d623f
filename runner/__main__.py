"""``python -m runner`` / the ``runner`` console script."""

import gc
import sys

from runner.cli import main as _cli_main


def main() -> None:
    """Console-script entry point: exits with the CLI's status.

    Why `gc.freeze()` on the way out: the log is written, synced and closed; what is left
    is the interpreter's shutdown, whose cyclic-GC passes over the objects torch created took
    ~2 s of wall time per run on a loaded 2-core machine (0.4 s frozen). Only here, where the
    process ends: `runner.cli.main` called in-process never freezes its caller's objects.
    """
    try:
        sys.exit(_cli_main())
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
