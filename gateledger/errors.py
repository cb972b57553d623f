"""The errors the API raises, all `LedgerError` (with `exit_code`), to catch by what they mean.

    try:
        gl.freeze(store, camp, "screen", key=key)
    except gl.errors.AlreadyFrozen:
        ...  # the plan stands; amend=True replaces it (the audit reports amendments)

They are defined in `ledger.errors` (the lowest layer that raises them) and re-exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from ledger.timestamp import TimestampError
    from ledger.trust import TrustError

#: errors of modules that are slow to import (X.509, HTTP): found on first use
_LAZY = {"TimestampError": "ledger.timestamp", "TrustError": "ledger.trust"}

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


def __getattr__(name: str) -> type[LedgerError]:
    if name not in _LAZY:
        raise AttributeError(f"module 'gateledger.errors' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
