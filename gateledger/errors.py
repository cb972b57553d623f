"""The errors the API raises, all `LedgerError` (with `exit_code`), to catch by what they mean.

    try:
        gl.freeze(store, camp, "screen", key=key)
    except gl.errors.AlreadyFrozen:
        ...  # the plan stands; amend=True replaces it (the audit reports amendments)

They are defined in `ledger.errors` (the lowest layer that raises them) and re-exported here.
"""

from __future__ import annotations

from ledger.errors import (
    AlreadyDecided,
    AlreadyFrozen,
    BundleError,
    CampaignError,
    CanonicalError,
    ConfigError,
    IntegrityError,
    LedgerError,
    MissingRuns,
    SigningKeyError,
)
from ledger.jsonsafe import JSONInputError
from ledger.timestamp import TimestampError
from ledger.trust import TrustError

__all__ = [
    "AlreadyDecided",
    "AlreadyFrozen",
    "BundleError",
    "CampaignError",
    "CanonicalError",
    "ConfigError",
    "IntegrityError",
    "JSONInputError",
    "LedgerError",
    "MissingRuns",
    "SigningKeyError",
    "TimestampError",
    "TrustError",
]
