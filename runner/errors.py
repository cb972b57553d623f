"""The runner's two failures the CLI words itself: bad input (exit 2), a crash mid-run (exit 1)."""


class UsageError(Exception):
    """Bad config, arguments or data: reported as a single ``error: ...`` line, exit 2."""


class TrainingCrashed(Exception):
    """Training failed mid-run (out of memory, a compile error, ...); the log says so."""
