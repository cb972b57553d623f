"""The campaign file's three descriptions agree: the loader, the shipped JSON Schema and the
key table of docs/campaign.md. Every key the loader accepts is in the schema and the docs,
and every key the schema or the docs name is one the loader accepts."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from gateledger.cli.main import cli
from ledger.errors import CampaignError
from stages.campaign import parse_campaign
from stages.campaign_schema import (
    DOCS_BEGIN,
    DOCS_END,
    SCHEMA_FILE,
    campaign_schema,
    key_rows,
    key_table,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "campaign.md"
SHIPPED = [
    ROOT / "campaigns" / "demo.toml",
    ROOT / "campaigns" / "paper.toml",
    ROOT / "examples" / "own-script" / "campaign.toml",
    ROOT / "examples" / "autoresearch" / "campaign.toml",
]

# Between them these use every key a campaign file may have (written out by hand).
BUILTIN_EVERY_KEY = """
[campaign]
name = "all"
metric = "val_bpb"
description = "every key"
data = "data/corpus"
[base]
depth = 2
[factors]
A = { key = "total_batch_size", levels = [1024, 4096] }
B = { key = "depth", levels = [2, 4] }
C = { key = "matrix_lr", levels = [0.01, 0.04] }
[conditions]
base = { }
hi = { A = 1, depth = 3 }
[[stages]]
name = "screen"
budget = "2m"
design = "fractional"
generators = ["C=AB"]
runs = 4
seeds = [0, 1]
hosts = ["a", "b"]
gpus = 2
max_attempts = 2
rule = { top_k = 2, within = 0.01, keep = ["base"], wins_all_cells = true, fdr = 0.1, reduce = true, min_cells = 1, failed = "worst", max_gap = { condition = "base", gap = 0.02 } }
checks = [ { name = "c", a = "hi", b = "best", within = 0.01 } ]
[[stages]]
name = "gate"
budget = 600
from = "screen"
add = ["hi"]
[sim]
intercept = 1.0
ref_budget = 120.0
budget_gain = 0.01
effects = { A = 0.1 }
interactions = { AB = 0.01 }
penalties = { C = 0.02 }
penalty_decay = 0.5
hosts = { b = 0.01 }
noise = 0.001
diverge = ["hi"]
overhead_s = 5.0
tokens_per_s = 1000.0
"""
COMMAND_KEYS = """
[campaign]
name = "cmd"
runner = { command = "python t.py --config {config}", format = "jsonl", keys = ["width"] }
[base]
width = 4
[[stages]]
name = "s"
budget = "1m"
add = ["base"]
[conditions]
base = { }
"""
COMMAND_SCHEMA = COMMAND_KEYS.replace('keys = ["width"]', 'config_schema = "{schema}"')
ADAPTER = """
[campaign]
name = "ar"
runner = { adapter = "autoresearch", script = "{script}", constants = { lr = "MATRIX_LR" }, python = "python3" }
[base]
lr = 0.04
[conditions]
base = { }
[[stages]]
name = "s"
budget = "1m"
add = ["base"]
"""
TOY = "import torch\nfrom prepare import TIME_BUDGET\nMATRIX_LR = 0.1\ntorch.manual_seed(42)\n"
FREE = {
    "base",
    "conditions",
    "sim.effects",
    "sim.interactions",
    "sim.penalties",
    "sim.hosts",
    "campaign.runner.constants",
}


def key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted key paths a parsed TOML document uses, in the docs' notation."""
    if isinstance(value, dict):
        for key, child in value.items():
            if prefix == "factors":
                yield from key_paths(child, "factors.<letter>")
                continue
            path = f"{prefix}.{key}" if prefix else key
            yield path
            if path not in FREE:
                yield from key_paths(child, path)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for item in value:
            yield from key_paths(item, f"{prefix}[]")


@pytest.fixture
def every_key_documents(tmp_path) -> list[str]:
    schema = tmp_path / "config.schema.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"width": {"type": "integer"}}}))
    script = tmp_path / "train.py"
    script.write_text(TOY)
    return [
        BUILTIN_EVERY_KEY,
        COMMAND_KEYS,
        COMMAND_SCHEMA.replace("{schema}", str(schema)),
        ADAPTER.replace("{script}", str(script)),
    ]


def test_the_shipped_schema_file_is_the_generated_one():
    assert json.loads(SCHEMA_FILE.read_text()) == campaign_schema()


def test_ledger_campaign_schema_prints_it():
    res = CliRunner().invoke(cli, ["campaign", "--schema"])
    assert res.exit_code == 0 and json.loads(res.output) == json.loads(SCHEMA_FILE.read_text())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_campaigns_validate_against_the_schema_and_load(path):
    Draft202012Validator.check_schema(campaign_schema())
    doc = tomllib.loads(path.read_text())
    errors = list(Draft202012Validator(campaign_schema()).iter_errors(doc))
    assert errors == []
    parse_campaign(path.read_text(), path)


def test_every_key_the_loader_accepts_is_in_the_schema_and_the_docs_and_back(
    every_key_documents, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    used: set[str] = set()
    for text in every_key_documents:
        parse_campaign(text, "c.toml")  # the loader accepts each
        doc = tomllib.loads(text)
        assert list(Draft202012Validator(campaign_schema()).iter_errors(doc)) == []
        used |= set(key_paths(doc))
    schema_keys = {row.path for row in key_rows()}
    text = DOCS.read_text()
    table = text[text.index(DOCS_BEGIN) : text.index(DOCS_END)]
    docs_keys = set(re.findall(r"^\| `([^`]+)` \|", table, re.M))
    assert used == schema_keys  # every key the loader accepts is in the schema, and back
    assert docs_keys == schema_keys  # every key is documented, and no other


def test_the_docs_table_is_the_generated_one():
    text = DOCS.read_text()
    assert key_table() in text


def test_the_docs_examples_are_the_shipped_files():
    text = DOCS.read_text()
    for path in SHIPPED[:1] + SHIPPED[2:]:
        relative = path.relative_to(ROOT).as_posix()
        heading = text.index(f"`{relative}`\n")
        block = re.search(r"```toml\n(.*?)```", text[heading:], re.S)
        assert block is not None and block.group(1) == path.read_text(), relative


def _tables(schema: dict[str, Any], node: dict[str, Any], loc: tuple) -> Iterator[tuple]:
    """Locations (in a document built from BUILTIN_EVERY_KEY) of every table with fixed keys."""
    node = schema["$defs"][node["$ref"].split("/")[-1]] if "$ref" in node else node
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        yield from _tables(schema, branch, loc)
    if "properties" in node:
        yield loc
        for key, child in node["properties"].items():
            yield from _tables(schema, child, (*loc, key))
    if "items" in node:
        yield from _tables(schema, node["items"], (*loc, 0))
    for child in (node.get("patternProperties") or {}).values():
        yield from _tables(schema, child, (*loc, "A"))


def test_a_key_outside_the_schema_is_refused_by_the_loader_and_by_the_schema(
    every_key_documents, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    schema = campaign_schema()
    tried = 0
    for text in (every_key_documents[0], every_key_documents[3]):
        locations = set(_tables(schema, schema, ()))
        for loc in sorted(locations, key=str):
            doc = tomllib.loads(text)
            table = doc
            for part in loc:
                table = (
                    table[part]
                    if isinstance(table, dict) and part in table
                    else (table[part] if isinstance(table, list) else None)
                )
                if table is None:
                    break
            if not isinstance(table, dict):
                continue
            table["zzz"] = 1
            assert list(Draft202012Validator(schema).iter_errors(doc)), loc
            with pytest.raises(
                CampaignError, match=r"zzz( \(stage '[^']+'\))?: unknown key \(known: "
            ):
                parse_campaign(_toml(doc), "c.toml")
            tried += 1
    assert tried >= 10  # campaign, runner, factors.A, stages[0], rule, max_gap, checks[0], sim...


def _toml(doc: dict[str, Any]) -> str:
    """A small TOML writer for the documents above (tables, arrays of tables, inline values)."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return json.dumps(v)

    lines = [
        f"{json.dumps(k)} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict | list)
    ]
    for key, table in doc.items():
        if not isinstance(table, dict | list):
            continue
        if isinstance(table, list):
            for item in table:
                lines.append(f"[[{key}]]")
                lines += [f"{json.dumps(k)} = {value(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{key}]")
            lines += [f"{json.dumps(k)} = {value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda t: t.replace('budget = "2m"', 'budget = "2 days"'), "stages[0].budget"),
        (lambda t: t.replace("top_k = 2,", "top_k = 0,"), "stages[0].rule.top_k"),
        (lambda t: t.replace('design = "fractional"', 'design = "half"'), "stages[0].design"),
        (lambda t: t.replace('failed = "worst"', 'failed = "drop"'), "stages[0].rule.failed"),
        (lambda t: t.replace('name = "screen"', 'name = "a b"'), "stages[0].name"),
        (lambda t: t.replace("gpus = 2", "gpus = 0"), "stages[0].gpus"),
        (lambda t: t.replace("fdr = 0.1", "fdr = 1.5"), "stages[0].rule.fdr"),
        (lambda t: t.replace("B = { key", "Z = { key"), "factors.Z"),
    ],
)
def test_schema_and_loader_refuse_the_same_values(edit, key):
    text = edit(BUILTIN_EVERY_KEY)
    doc = tomllib.loads(text)
    assert list(Draft202012Validator(campaign_schema()).iter_errors(doc))
    with pytest.raises(CampaignError, match=re.escape(key)):
        parse_campaign(text, "c.toml")
