"""Error types that the command line turns into one clear line and an exit code.

Why: every malformed file, key, signature or argument must reach the user as a single line
naming what is wrong (exit 2), and every failed integrity check as exit 1, never a traceback.
A script using the API catches the subclass it handles differently (a stage already frozen
is not a bad campaign); all of them are `LedgerError`, so one `except` still catches every
one. They live here, in the lowest layer that raises them, and `gateledger.errors`
re-exports them.
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


class CampaignError(LedgerError):
    """A campaign file or one of its stages is malformed or asks for something impossible."""


class ConfigError(LedgerError):
    """A setting, runner configuration or option value is invalid (not the campaign's shape)."""


class AlreadyFrozen(LedgerError):
    """The stage already has a signed plan; only an explicit amendment may replace it."""


class AlreadyDecided(LedgerError):
    """The stage already has a signed decision; decisions are final."""


class MissingRuns(LedgerError):
    """The frozen plan has cells without a run record, so nothing can be decided yet."""


class SigningKeyError(LedgerError):
    """No usable private key: none, several without a choice, unreadable, or revoked."""


class BundleError(LedgerError):
    """A review bundle is malformed, truncated or over its limits."""
