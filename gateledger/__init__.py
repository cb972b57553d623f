"""gateledger: auditable, staged screening of micro-pretraining recipes, from Python.

The functions here mirror the `ledger` commands: the command line parses its options,
calls one of them and formats the result. A whole campaign on the simulator:

>>> import gateledger as gl
>>> store = gl.init(".ledger", host="local")
>>> key = gl.keygen("me", store=store)               # private half stays in LEDGER_KEY_DIR
>>> camp = gl.load_campaign("campaign.toml")
>>> camp.stage_names
['screen', 'gate', 'confirm']
>>> for stage in camp.stage_names:
...     manifest = gl.freeze(store, camp, stage, key=key, sim_only=True)  # signed before runs
...     report = gl.run(store, camp, stage, executor="sim")
...     decision = gl.decide(store, camp, stage, key=key)
>>> [decision.body["conditions"][c]["name"] for c in decision.body["promoted"]]
['base']
>>> result = gl.audit(store)                          # re-derives every decision from logs
>>> result.ok, result.problems
(True, [])
>>> try:
...     gl.decide(store, camp, "screen", key=key)
... except gl.AlreadyDecided as exc:                  # the ledger's rules hold for scripts too
...     print(type(exc).__name__, exc.exit_code)
AlreadyDecided 2
>>> import pandas as pd
>>> frame = pd.DataFrame(gl.runs(store))
>>> sorted(frame["stage"].unique())
['confirm', 'gate', 'screen']

Every error is a `gl.LedgerError` subclass (`gl.errors`) whose `exit_code` the command line
exits with. docs/api.md lists each function, its arguments, result and errors.

Why the functions load on first use (PEP 562 `__getattr__`): the method and the audit pull
SciPy, statsmodels and matplotlib (about a second), which `ledger --help`, `ledger init` and
`import gateledger` do not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gateledger import errors
from gateledger.errors import (
    AlreadyDecided,
    AlreadyFrozen,
    BundleError,
    CampaignError,
    ConfigError,
    IntegrityError,
    LedgerError,
    MissingRuns,
    SigningKeyError,
)

#: public name -> the module that defines it
_HOMES = {
    "gateledger.store": (
        "Signed",
        "init",
        "open_store",
        "ingest",
        "read_plan",
        "freeze_plan",
        "anchor",
        "timestamp",
        "settings",
        "rebuild_index",
        "sql",
        "tsa_urls",
    ),
    "gateledger.signing": (
        "keygen",
        "keys",
        "key_dir",
        "signing_key",
        "default_key_name",
        "demo_key",
        "export_keys",
        "revoke",
        "set_default",
    ),
    "gateledger.method": (
        "load_campaign",
        "campaign_schema",
        "design",
        "freeze",
        "build_executor",
        "try_stage",
        "run",
        "decide",
        "walk",
        "cells",
        "greedy_search",
        "random_search",
        "effects",
        "status",
        "watch",
    ),
    "gateledger.evaluation": ("evaluate", "rerun_evaluation", "save_evaluation"),
    "gateledger.integrity": ("verify", "reviewer_inputs"),
    "gateledger.review": (
        "audit",
        "audit_bundle",
        "spot_check",
        "runs",
        "runs_rows",
        "export",
        "reproduce",
    ),
    "gateledger.reports": (
        "report",
        "comparison_table",
        "cost_summary",
        "effect_summary",
        "write_html",
        "compare",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "AlreadyDecided",
    "AlreadyFrozen",
    "BundleError",
    "CampaignError",
    "ConfigError",
    "IntegrityError",
    "LedgerError",
    "MissingRuns",
    "Signed",
    "SigningKeyError",
    "anchor",
    "audit",
    "audit_bundle",
    "build_executor",
    "campaign_schema",
    "cells",
    "compare",
    "comparison_table",
    "cost_summary",
    "decide",
    "default_key_name",
    "demo_key",
    "design",
    "effect_summary",
    "effects",
    "errors",
    "evaluate",
    "export",
    "export_keys",
    "freeze",
    "freeze_plan",
    "greedy_search",
    "ingest",
    "init",
    "key_dir",
    "keygen",
    "keys",
    "load_campaign",
    "open_store",
    "random_search",
    "read_plan",
    "rebuild_index",
    "report",
    "reproduce",
    "rerun_evaluation",
    "reviewer_inputs",
    "revoke",
    "run",
    "runs",
    "runs_rows",
    "save_evaluation",
    "set_default",
    "settings",
    "signing_key",
    "spot_check",
    "sql",
    "status",
    "timestamp",
    "try_stage",
    "tsa_urls",
    "verify",
    "walk",
    "watch",
    "write_html",
]


def __getattr__(name: str) -> Any:
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'gateledger' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # what the names are, for editors and type checkers
    from gateledger.evaluation import (  # noqa: F401
        evaluate,
        rerun_evaluation,
        save_evaluation,
    )
    from gateledger.integrity import reviewer_inputs, verify  # noqa: F401
    from gateledger.method import (  # noqa: F401
        build_executor,
        campaign_schema,
        cells,
        decide,
        design,
        effects,
        freeze,
        greedy_search,
        load_campaign,
        random_search,
        run,
        status,
        try_stage,
        walk,
        watch,
    )
    from gateledger.reports import (  # noqa: F401
        compare,
        comparison_table,
        cost_summary,
        effect_summary,
        report,
        write_html,
    )
    from gateledger.review import (  # noqa: F401
        audit,
        audit_bundle,
        export,
        reproduce,
        runs,
        runs_rows,
        spot_check,
    )
    from gateledger.signing import (  # noqa: F401
        default_key_name,
        demo_key,
        export_keys,
        key_dir,
        keygen,
        keys,
        revoke,
        set_default,
        signing_key,
    )
    from gateledger.store import (  # noqa: F401
        Signed,
        anchor,
        freeze_plan,
        ingest,
        init,
        open_store,
        read_plan,
        rebuild_index,
        settings,
        sql,
        timestamp,
        tsa_urls,
    )
