"""Which runs of a multi-host stage one machine takes: its host block, named explicitly."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from stages.execute import select_host_block
from stages.executors.base import RunTask


def test_a_real_executor_takes_only_the_named_host_block():
    tasks = [RunTask("m", "s", "c", "n", {}, {}, 0, h, 1.0) for h in ("a", "b")]
    with pytest.raises(LedgerError, match="pass --host NAME"):
        select_host_block(tasks, None, "local")
    block, skipped = select_host_block(tasks, "a", "local")
    assert [t.host for t in block] == ["a"] and skipped == ["b"]
