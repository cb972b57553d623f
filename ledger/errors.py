"""Error types that the command line turns into one clear line and an exit code.

Why: every malformed file, key, signature or argument must reach the user as a single line
naming what is wrong (exit 2), and every failed integrity check as exit 1, never a traceback.
A script using the API catches the subclass it handles differently (a stage already frozen
is not a bad campaign, a stage never frozen is not a missing store); all of them are
`LedgerError`, so one `except` still catches every one. They are typed by what a caller
does about them, like pyca/cryptography's `AlreadyFinalized` / `NotYetFinalized`: the
"already" states (frozen, decided, recorded, revoked), the "not yet" ones (not frozen,
parent not decided, runs missing), what is not there (no store, unknown object, key or
stage), and what could not be read, computed or run. A bare `LedgerError` is left only
where no caller could act differently (a programming error in an argument's type). They
all live here, in the lowest layer, and `gateledger.errors` re-exports them.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Bad input or usage (missing store, malformed file, unknown key...): exit 2."""

    exit_code = 2


# -- input: what a caller passed or pointed at --------------------------------------------


class CanonicalError(LedgerError):
    """A value cannot be encoded as RFC 8785 canonical JSON (NaN, inf, bytes...)."""


class CampaignError(LedgerError):
    """A campaign file or one of its stages is malformed or asks for something impossible."""


class ConfigError(LedgerError):
    """A setting, runner configuration or option value is invalid (not the campaign's shape)."""


class InputError(LedgerError):
    """A file or table given from outside cannot be read, is malformed, or does not cover
    what was asked (a plan, a log, an anchor, TSA roots, a CSV, a replay table, a saved
    evaluation); the message names the file and the key or line."""


class JSONInputError(InputError):
    """A document that is not strict JSON (the message says where and why)."""


class TrustError(InputError):
    """A trust root the reviewer gave cannot be used (bad id, bad file)."""


class PlanError(InputError):
    """A plan breaks a key's rule before it is signed (the message names the key)."""


class InvalidId(LedgerError):
    """Not an object id: not hex, too long, or a prefix shorter than 12 characters."""


class AmbiguousId(LedgerError):
    """An id prefix matches several objects: give more characters."""


class AnalysisError(LedgerError):
    """The statistics cannot be computed from these rows, terms or points (effects not
    estimable, a level that is not -1/+1, too few rows)."""


class MissingExtra(LedgerError):
    """An optional dependency is not installed (Ray, Optuna): the message says what to install."""


# -- what is not there ----------------------------------------------------------------------


class NoStore(LedgerError):
    """No ledger store at the path (`ledger init` makes one), or the folder there is not one."""


class UnsupportedStore(LedgerError):
    """The store was written in a format version this release does not read."""


class UnknownObject(LedgerError):
    """No object in the store has this id (or id prefix)."""


class WrongKind(LedgerError):
    """The object exists but is another kind (a run record where a manifest was asked)."""


class UnknownKey(LedgerError):
    """No key with this id in the store's keyring."""


class UnknownStage(LedgerError):
    """No stage of this name in the store (or campaign) to show."""


class NothingToDo(LedgerError):
    """The store holds nothing the command can work on: no journal to anchor, no gate to
    compare, no run to replay, no candidate to run or evaluate, nothing a key signed."""


# -- already: the ledger's rules refuse a second time --------------------------------------


class AlreadyFrozen(LedgerError):
    """The stage already has a signed plan; only an explicit amendment may replace it."""


class AlreadyDecided(LedgerError):
    """The stage already has a signed decision; decisions are final."""


class AlreadyRecorded(LedgerError):
    """The run already has a record under this manifest; a run is recorded once."""


class AlreadyRevoked(LedgerError):
    """The key was revoked before; a revocation is final."""


class KeyExists(LedgerError):
    """A private key of this name exists already; keys are never overwritten."""


# -- not yet: the ledger's order refuses a step before its time ----------------------------


class NotFrozen(LedgerError):
    """The stage has no signed plan yet (`ledger freeze` first), so nothing can run,
    be decided or be amended."""


class ParentNotDecided(LedgerError):
    """The stage's parent gate has no signed decision yet, so its candidates are unknown."""


class MissingRuns(LedgerError):
    """The frozen plan has cells without a run record, so nothing can be decided yet."""


# -- runs -----------------------------------------------------------------------------------


class UndeclaredRun(LedgerError):
    """The run (condition, seed, host) is not one the manifest declares."""


class LogRefused(LedgerError):
    """Ingest refuses a raw log: not a log, not the declared run's, or a status its log does
    not support (every reason on the one line)."""


class RunsFailed(LedgerError):
    """A walk stops before deciding a gate whose runs were refused, or all crashed."""


class ReplayError(LedgerError):
    """A recorded run cannot be replayed here (no seed or steps recorded, the replay failed
    or ran past its time)."""


# -- environment ----------------------------------------------------------------------------


class StorageError(LedgerError):
    """The file system refused a read, a write, a folder or a lock."""


class JournalLocked(StorageError):
    """Another process held the journal's lock past the timeout: try again."""


class TimestampError(LedgerError):
    """A timestamp authority could not be asked, or its answer is not a token over the id."""


class QueryError(LedgerError):
    """A SQL query is refused (one read-only query only) or fails, or the index will not open."""


# -- integrity ------------------------------------------------------------------------------


class IntegrityError(LedgerError):
    """Stored bytes no longer match their id or signature: a check failed, exit 1."""

    exit_code = 1


class SigningKeyError(LedgerError):
    """No usable private key: none, several without a choice, unreadable, or revoked."""


class BundleError(LedgerError):
    """A review bundle is malformed, truncated or over its limits."""


__all__ = [
    "AlreadyDecided",
    "AlreadyFrozen",
    "AlreadyRecorded",
    "AlreadyRevoked",
    "AmbiguousId",
    "AnalysisError",
    "BundleError",
    "CampaignError",
    "CanonicalError",
    "ConfigError",
    "InputError",
    "IntegrityError",
    "InvalidId",
    "JSONInputError",
    "JournalLocked",
    "KeyExists",
    "LedgerError",
    "LogRefused",
    "MissingExtra",
    "MissingRuns",
    "NoStore",
    "NotFrozen",
    "NothingToDo",
    "ParentNotDecided",
    "PlanError",
    "QueryError",
    "ReplayError",
    "RunsFailed",
    "SigningKeyError",
    "StorageError",
    "TimestampError",
    "TrustError",
    "UndeclaredRun",
    "UnknownKey",
    "UnknownObject",
    "UnknownStage",
    "UnsupportedStore",
    "WrongKind",
]
