"""Refusals give every reason: per-line problems that say the same thing are said once with
their lines, nothing is cut to "and N more"."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError
from ledger.ingest import check_log, every_reason, grouped_reasons, parse_raw_log


def test_same_problems_on_several_lines_are_said_once_with_their_lines():
    problems = [
        "line 2: unknown record type None",
        "line 3: unknown record type None",
        "line 4: unknown record type None",
        "line 9: unknown record type None",
        "summary says ok but has no finite val_bpb",
        "line 7: not valid JSON (bad)",
    ]
    assert grouped_reasons(problems) == [
        "lines 2-4, 9: unknown record type None",
        "summary says ok but has no finite val_bpb",
        "line 7: not valid JSON (bad)",
    ]
    assert every_reason(problems) == "; ".join(grouped_reasons(problems))


def test_a_refused_log_names_every_defect():
    raw = b'{"type": "header"}\nnot json\n{"type": "steps"}\n{"type": "summary", "status": "ok"}\n'
    with pytest.raises(LedgerError) as caught:
        check_log(parse_raw_log(raw))
    message = str(caught.value)
    assert message.startswith("raw log refused (1 line(s) are not JSON records): line 2: not val")
    assert "line 3: unknown record type 'steps'" in message
    assert "summary says ok but has no finite val_bpb" in message
    assert "more)" not in message
