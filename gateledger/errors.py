"""The errors the API raises, all `LedgerError` (with `exit_code`), to catch by what they mean.

    try:
        gl.freeze(store, camp, "screen", key=key)
    except gl.errors.AlreadyFrozen:
        ...  # the plan stands; amend=True replaces it (the audit reports amendments)
    except gl.errors.ParentNotDecided:
        ...  # decide the parent gate first

They are defined in `ledger.errors` (one catalogue, the lowest layer) and re-exported here;
docs/api.md says which function raises which.
"""

from __future__ import annotations

from ledger.errors import *  # noqa: F403
from ledger.errors import __all__ as __all__
