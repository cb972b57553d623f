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
>>> [decision.body.name(c) for c in decision.body.promoted]
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
`import gateledger` do not need. The public names are written once, in `__init__.pyi`
(`from MODULE import NAME as NAME` per name, as scientific Python's lazy_loader stubs do):
editors and type checkers read it as the package's interface, and this module reads the
same file to know which module to load each name from, `__all__` and `dir()`.
"""

from __future__ import annotations

import ast
from importlib import import_module
from pathlib import Path
from typing import Any


def _homes() -> dict[str, str]:
    """Public name -> the module that defines it, read from `__init__.pyi` (the one list)."""
    stub = ast.parse(Path(__file__).with_suffix(".pyi").read_text(encoding="utf-8"))
    homes = {}
    for node in stub.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                homes[alias.asname or alias.name] = node.module
    return homes


_HOME_OF = _homes()
__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    try:
        module = _HOME_OF[name]
    except KeyError:
        raise AttributeError(f"module 'gateledger' has no attribute {name!r}") from None
    if module == __name__:  # a submodule (`errors`)
        value: Any = import_module(f"{__name__}.{name}")
    else:
        value = getattr(import_module(module), name)
    globals()[name] = value  # found once; later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
