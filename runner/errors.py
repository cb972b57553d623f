"""One exception type for bad user input, so the CLI can print one line and exit 2."""


class UsageError(Exception):
    """Bad config, arguments or data: reported as a single ``error: ...`` line, exit 2."""
