"""Direct tests of the pure input and binding rules: `ledger.jsonsafe` and `ledger.binding`."""

from __future__ import annotations

import pytest

from ledger.binding import header_problems, same_json, status_problems
from ledger.jsonsafe import JSONInputError, depth_of, loads_line, loads_strict
from ledger.log_records import LogHeader
from ledger.plan_model import Plan
from ledger.rawlog import ParsedLog, parse_raw_log


@pytest.mark.parametrize(
    "text,why",
    [
        ('{"a": 1, "a": 2}', "duplicate key 'a'"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a JSON number"),
        ("[" * 65 + "]" * 65, "nested more than 64 levels deep"),
        ("[" * 10_000 + "]" * 10_000, "nested more than 64 levels deep"),
        (b"\xff", "not UTF-8 text"),
        ("{", "not valid JSON"),
    ],
)
def test_strict_documents_refused(text, why):
    with pytest.raises(JSONInputError, match=why):
        loads_strict(text, "doc")


def test_strict_documents_size_and_depth_limits():
    assert loads_strict("[" * 64 + "]" * 64, "doc") is not None  # 64 levels is the limit
    with pytest.raises(JSONInputError, match="more than the 10 allowed"):
        loads_strict('{"a": "0123456789"}', "doc", max_bytes=10)
    assert depth_of({"a": [1, {"b": []}]}) == 4 and depth_of({}) == 1 and depth_of(5) == 0


@pytest.mark.parametrize(
    "line,value",
    [
        (b'{"type":"step","loss":2.5}', {"type": "step", "loss": 2.5}),
        (b'{"t":"x:y","a":1}', {"t": "x:y", "a": 1}),  # colon in a string: the strict path
        (b'{"a":[1,2],"b":{"c":null}}', {"a": [1, 2], "b": {"c": None}}),
        (b'  {"a" : 1}  ', {"a": 1}),
        # a header: nested, with colons and escaped quotes in its strings (the fast path)
        (
            b'{"t":"12:00:01+00:00","q":"a\\":\\\\","n":{"l":[1,{"m":":"}]}}',
            {"t": "12:00:01+00:00", "q": 'a":\\', "n": {"l": [1, {"m": ":"}]}},
        ),
    ],
)
def test_raw_log_lines_parse_as_json_does(line, value):
    assert loads_line(line) == value


@pytest.mark.parametrize(
    "line",
    [
        b'{"a":1,"a":2}',
        b'{"a":1, "a" :2}',
        b'{"a":{"b":1,"b":2}}',
        b'{"t":"1:2","a":[1],"a":[2]}',  # a repeat hidden behind colons in a string
        b'{"t":"x\\"","n":{"b":1,"b":[2]}}',  # ... behind an escaped quote
        b'{"l":[{"k":1,"k":2}]}',  # ... inside a list
        b'{"a":NaN}',
        b'{"a":1e999}',
        b'{"a":1} {"b":2}',
        b"\xfe{}",
        b'{"x":' + b"[" * 70 + b"]" * 70 + b"}",
        b"",
    ],
)
def test_raw_log_lines_that_are_not_strict_json_are_refused(line):
    with pytest.raises(ValueError):
        loads_line(line)


def test_same_json_never_takes_a_bool_for_a_number():
    assert same_json(1, 1.0) and same_json([1, {"a": 2}], [1.0, {"a": 2.0}])
    assert not same_json(True, 1) and not same_json(0, False) and not same_json(None, 0)
    assert not same_json({"a": 1}, {"a": 1, "b": 2}) and not same_json([1], [1, 1])


def _log(**header) -> ParsedLog:
    return ParsedLog(header=LogHeader.model_validate({"type": "header", **header}))


def _plan(**changes) -> Plan:
    """A one-run plan of the builtin runner (version 1.0, code c..., data d...), 120 s."""
    return Plan.model_validate(
        {
            "campaign": "t",
            "stage": "s",
            "budget_s": 120,
            "runs": [{"condition": "c1", "seed": 0, "host": "a100"}],
            "conditions": {
                "c1": {
                    "name": "c1",
                    "config": {"depth": 4},
                    "runner_config": {"depth": 4, "seq_len": 128},
                }
            },
            "rule": {"top_k": 1},
            "analysis": {},
            "runner": {"kind": "builtin", "version": "1.0", "code_sha256": "c" * 64},
            "data_sha256": "d" * 64,
            "parent": None,
            **changes,
        }
    )


MANIFEST = _plan()
GOOD = {
    "manifest": "m" * 64,
    "seed": 0,
    "host": "a100",
    "budget_s": 120.0,
    "depth": 4,
    "seq_len": 128,
    "runner": "builtin",
    "runner_version": "1.0",
    "code_sha256": "c" * 64,
    "data_sha256": "d" * 64,
}


def test_a_bound_header_has_no_problems():
    assert header_problems("m" * 64, MANIFEST, "c1", 0, "a100", _log(**GOOD)) == []


@pytest.mark.parametrize(
    "change,words",
    [
        ({"manifest": "n" * 64}, "header cites manifest"),
        ({"seed": 1}, "header seed 1 is not the declared seed 0"),
        ({"host": "l40s"}, "header host 'l40s'"),
        ({"budget_s": 600}, "header budget_s 600"),
        ({"seq_len": 64}, "header seq_len 64 is not the condition's 128"),  # a default key
        ({"code_sha256": "e" * 64}, "header code_sha256"),
        ({"runner_version": "2.0"}, "header runner_version '2.0'"),
        ({"data_sha256": None}, "header data_sha256 None"),
        # the simulator's label does not make a real-data builtin plan's checks laxer
        ({"runner": "sim"}, "header runner 'sim' in the manifest's runner is builtin"),
    ],
)
def test_each_header_field_binds(change, words):
    found = header_problems("m" * 64, MANIFEST, "c1", 0, "a100", _log(**{**GOOD, **change}))
    assert any(words in p for p in found), found


def test_a_header_key_of_the_wrong_type_is_a_defect_of_the_log():
    """A bool is not a seed (nor a string a budget): the header does not fit its model, so
    the log is malformed, named in the house form, and nothing is read from that header."""
    for key, value, words in (
        ("seed", "true", "line 1: header: seed: must be an integer, not True"),
        ("budget_s", '"120"', "line 1: header: budget_s: must be an integer, not '120'"),
    ):
        header = f'{{"type":"header","manifest":"{"m" * 64}","{key}":{value}}}'
        summary = '{"type":"summary","status":"ok","val_bpb":1.0,"training_seconds":120}'
        parsed = parse_raw_log(f"{header}\n{summary}\n".encode())
        assert parsed.header is None and parsed.manifest is None
        assert any(p.startswith(words) for p in parsed.defects), parsed.defects


def test_the_runner_kind_is_the_manifests_not_the_headers():
    """A plan frozen without data is the simulator's alone; a real-data plan never takes a
    simulated log, whatever the header calls itself (and the interval checks follow the
    plan: `simulated` is passed from the manifest's kind, never read from the header)."""
    sim_plan = _plan(runner={"kind": "sim"}, data_sha256=None)
    found = header_problems("m" * 64, sim_plan, "c1", 0, "a100", _log(**GOOD))
    assert any("in a plan frozen without a data set: only the simulator" in p for p in found)
    assert not any("code_sha256" in p for p in found)  # no builtin identity for the simulator
    assert (
        header_problems("m" * 64, sim_plan, "c1", 0, "a100", _log(**{**GOOD, "runner": "sim"}))
        == []
    )
    long = _parsed("ok", 1.2, seconds=90.0)
    assert status_problems("ok", long, budget_s=120, interval_s=30.0, simulated=True) == []
    assert status_problems("ok", long, budget_s=120, interval_s=30.0)  # a real plan's run


def test_an_ok_run_of_a_budget_runner_trains_its_budget():
    """The builtin runner (and an adapted script, and the simulator) stop once training
    seconds reach the budget: an ok run short of it did not train what it says; a command
    keeps its own contract, and a run that did not finish ok is not held to it."""
    short = _parsed("ok", 1.2, seconds=60.0)
    found = status_problems("ok", short, budget_s=120, trains_budget=True)
    assert found == [
        "status ok after 60 training seconds, short of the frozen budget of 120 s its "
        "runner trains for"
    ]
    assert (
        status_problems("ok", _parsed("ok", 1.2, seconds=120.0), budget_s=120, trains_budget=True)
        == []
    )
    assert status_problems("ok", short, budget_s=120) == []  # a command's contract
    crashed = _parsed("crashed", None, seconds=60.0)
    assert status_problems("crashed", crashed, budget_s=120, trains_budget=True) == []


def test_a_header_that_lacks_a_config_key():
    header = {k: v for k, v in GOOD.items() if k != "seq_len"}
    assert "header lacks config key 'seq_len'" in header_problems(
        "m" * 64, MANIFEST, "c1", 0, "a100", _log(**header)
    )


def _parsed(
    status: str,
    val: float | None,
    *,
    diverge: str | None = None,
    seconds: float = 1.0,
    with_eval: bool = False,
) -> ParsedLog:
    out = ParsedLog(
        status=status, diverge_evidence=diverge, eval={"val_bpb": val} if with_eval else None
    )
    out.metrics.update(val_bpb=val, training_seconds=seconds)
    return out


@pytest.mark.parametrize(
    "status,parsed,interval,deadline,words",
    [
        ("ok", _parsed("ok", None), 5.0, None, "no ok summary with a finite val_bpb"),
        ("diverged", _parsed("diverged", None), 5.0, None, "no step line shows"),
        ("diverged", _parsed("ok", 1.2), 5.0, None, "its log reports val_bpb 1.2"),
        ("crashed", _parsed("ok", 1.2), 5.0, None, "ends with an ok summary"),
        ("timeout", _parsed("timeout", None, with_eval=True), 500.0, 300.0, "finished evaluation"),
        ("timeout", _parsed("timeout", None), 200.0, 300.0, "before its deadline of 300 s"),
        ("ok", _parsed("ok", 1.2, seconds=90.0), 30.0, None, "claims 90 training seconds"),
        ("lost", _parsed("ok", 1.2), 5.0, None, "is not one of"),
    ],
)
def test_each_status_needs_its_evidence(status, parsed, interval, deadline, words):
    found = status_problems(status, parsed, budget_s=120, interval_s=interval, deadline_s=deadline)
    assert any(words in p for p in found), found


@pytest.mark.parametrize(
    "status,parsed,interval,deadline",
    [
        ("ok", _parsed("ok", 1.2), 5.0, None),
        ("diverged", _parsed("diverged", None, diverge="step line 9: loss nan"), 5.0, None),
        ("crashed", _parsed("crashed", None), 5.0, None),
        ("timeout", _parsed("timeout", None), 301.0, 300.0),
        ("ok", _parsed("ok", 1.2, seconds=90.0), None, None),  # no start journaled: said elsewhere
    ],
)
def test_supported_statuses_pass(status, parsed, interval, deadline):
    assert (
        status_problems(status, parsed, budget_s=120, interval_s=interval, deadline_s=deadline)
        == []
    )
