"""Error types that the command line turns into one clear line and an exit code.

Why: every malformed file, key, signature or argument must reach the user as a single line
naming what is wrong (exit 2), and every failed integrity check as exit 1, never a traceback.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Bad input or usage (missing store, malformed file, unknown key...): exit 2."""

    exit_code = 2


class CanonicalError(LedgerError):
    """A value cannot be encoded as RFC 8785 canonical JSON (NaN, inf, bytes...)."""


class IntegrityError(LedgerError):
    """Stored bytes no longer match their id or signature: a check failed, exit 1."""

    exit_code = 1
