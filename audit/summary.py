"""What a report must say before its tables: what the evidence is (simulated or trained, who
signed, whether anything was published), where it came from (runner, data, versions, hosts),
and what was decided and how sure it is, in one paragraph.

Why separate from the report data: these are judgements a reader needs first ("all of this
is simulated", "the winner is not separated from the runner-up"), built from the same
audited data the tables show, so the banner, the paragraph, `metrics.json` and the Markdown
say the same thing.
"""

from __future__ import annotations

import platform
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from audit.rederive import AuditResult
from ledger.keys import DEMO_KEY_NAME
from ledger.store import Store
from stages.campaign import budget_label

TOOL_PACKAGES = ("gateledger", "torch", "numpy", "statsmodels", "duckdb", "matplotlib")


def is_demo_key(name: Any) -> bool:
    return isinstance(name, str) and (name == DEMO_KEY_NAME or name.startswith("DEMO-KEY"))


def run_facts(store: Store, result: AuditResult) -> dict[str, Any]:
    """Counts a reader needs first: runs, simulated runs, signers (demo or not), anchors, trust.

    Runs and simulated runs cover every manifest the audit saw (gates and baselines) plus
    unplanned compute; signers are the keys of every manifest and decision.
    """
    names = {r.get("key_id"): r.get("name") for r in store.keyring().records()}
    used: Counter[str] = Counter()
    for body in result.bodies.get("manifest", {}).values():
        used[str(body.get("freezer"))] += 1
    for body in result.bodies.get("decision", {}).values():
        used[str(body.get("decider"))] += 1
    signers = [
        {
            "key_id": kid,
            "name": names.get(kid, "unknown"),
            "signed": n,
            "demo": is_demo_key(names.get(kid)),
        }
        for kid, n in sorted(used.items())
        if kid != "None"
    ]
    return {
        "runs": sum(s.runs for s in result.stages) + len(result.unplanned),
        "simulated_runs": sum(s.sim_runs for s in result.stages),
        "signers": signers,
        "demo_key": any(s["demo"] for s in signers),
        "anchors": result.anchors,
        "trust": result.trust.get("trust", "store"),
        "notes": list(result.notes),
        "binding": result.binding,
    }


def caveats(facts: Mapping[str, Any]) -> list[str]:
    """The banner's lines under the verdict: what a clean audit does not mean here."""
    out = []
    runs, sim = facts.get("runs", 0), facts.get("simulated_runs", 0)
    if sim:
        share = "All" if sim == runs else f"{sim} of"
        out.append(
            f"{share} {runs} runs are simulated (runner: sim): their numbers come from a "
            f"synthetic response surface, not from training."
        )
    demo = [s["name"] for s in facts.get("signers", []) if s.get("demo")]
    if demo:
        out.append(
            f"Signed with the demo key {demo[0]}: its private key is made unencrypted "
            f"by anyone running the demo, so its signatures prove nothing about who "
            f"froze or decided."
        )
    if not facts.get("anchors"):
        out.append(
            "No anchor was made: nothing published outside this store pins its journals "
            "(`ledger anchor`, then publish what it prints)."
        )
    out += (facts.get("binding") or {}).get("caveats", [])
    if facts.get("trust", "store") == "store":
        out.append(
            "Trust is store-asserted: signatures were checked against the keys the store "
            "itself holds; a reviewer names theirs with --trust or --trust-file."
        )
    return out


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for package in TOOL_PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def provenance(result: AuditResult) -> dict[str, Any]:
    """Where the evidence came from: runner identities and data hashes the manifests froze,
    torch versions, runner versions and devices the logs' headers state, hosts of the run
    records, and the versions of the tools that wrote this report. Counts are of runs
    (headers, hosts) or manifests (runner, data)."""
    runners: Counter[str] = Counter()
    data: Counter[str] = Counter()
    for body in result.bodies.get("manifest", {}).values():
        runner = body.get("runner") or {}
        runners[_runner_text(runner)] += 1
        data[_data_text(runner, body.get("data_sha256"))] += 1
    torch: Counter[str] = Counter()
    devices: Counter[str] = Counter()
    log_runners: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    headers = result.bodies.get("log_header", {})  # read by the audit's parse of each log
    for rid, body in result.bodies.get("run", {}).items():
        hosts[str(body.get("host"))] += 1
        header = headers.get(rid)
        if header is None:
            log_runners[f"{body.get('format', '?')} log without a header"] += 1
            continue
        torch[str(header.get("torch") or "none (simulated)")] += 1
        devices[str(header.get("device") or "?")] += 1
        log_runners[
            f"{header.get('runner') or 'builtin'} {header.get('runner_version') or ''}".strip()
        ] += 1
    return {
        "runner": dict(runners),
        "data_sha256": dict(data),
        "torch": dict(torch),
        "devices": dict(devices),
        "log_runners": dict(log_runners),
        "hosts": dict(hosts),
        "report_tools": _versions(),
    }


def _runner_text(runner: Mapping[str, Any]) -> str:
    if runner.get("kind") == "adapter":
        return (
            f"{runner.get('adapter')} adapter: {runner.get('script')}, script sha256 "
            f"{runner.get('script_sha256')}"
        )
    if runner.get("command"):
        return f"command: {runner['command']} ({runner.get('format', 'autoresearch')} logs)"
    return (
        f"{runner.get('kind', '?')} {runner.get('version', '?')}, code sha256 "
        f"{runner.get('code_sha256') or 'none'}"
    )


def _data_text(runner: Mapping[str, Any], data_sha256: Any) -> str:
    """The frozen data hash, or why there is none: a foreign runner reads its own data (the
    ledger never sees it), a builtin plan without one was frozen for the simulator alone."""
    if data_sha256:
        return str(data_sha256)
    if runner.get("kind") in ("command", "adapter"):
        return "not hashed (own runner: it reads its own data, outside the ledger's view)"
    return "none (a sim-only plan)"


def provenance_rows(prov: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(what, text) rows for the report's provenance table."""

    def counted(values: Mapping[str, int], unit: str) -> str:
        return (
            "; ".join(f"{k} ({n} {unit}{'s' if n != 1 else ''})" for k, n in sorted(values.items()))
            or "—"
        )

    tools = ", ".join(f"{k} {v}" for k, v in (prov.get("report_tools") or {}).items() if v)
    return [
        ("runner (frozen in the manifests)", counted(prov.get("runner") or {}, "manifest")),
        (
            "data sha256 (frozen in the manifests)",
            counted(prov.get("data_sha256") or {}, "manifest"),
        ),
        ("runner the logs name", counted(prov.get("log_runners") or {}, "run")),
        ("torch the logs name", counted(prov.get("torch") or {}, "run")),
        ("devices", counted(prov.get("devices") or {}, "run")),
        ("hosts", counted(prov.get("hosts") or {}, "run")),
        ("this report was made with", tools or "—"),
    ]


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _pick(conditions: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Conditions in the gate's own order: its ranking first, then the rest by mean rank."""
    ranked = [c for c in conditions if c.get("mean") is not None]
    return sorted(
        ranked,
        key=lambda c: (
            c.get("gate_rank") is None,
            c.get("gate_rank") or 0,
            c.get("rank") or 1e9,
            str(c.get("name")),
        ),
    )


def _side(c: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": c.get("name"),
        "condition": c.get("condition"),
        "mean": _num(c.get("mean")),
        "ci_low": _num(c.get("ci_low")),
        "ci_high": _num(c.get("ci_high")),
        "n": c.get("n"),
        "promoted": bool(c.get("promoted")),
    }


def _interval(side: Mapping[str, Any]) -> str:
    if side["ci_low"] is None or side["ci_high"] is None:
        return f"{side['mean']:.4f} (no interval)"
    return f"{side['mean']:.4f} [{side['ci_low']:.4f}, {side['ci_high']:.4f}]"


FLAG_PHRASES = {
    "winner_overlaps_runner_up": "the winner's interval overlaps the runner-up's",
    "host_reverses_order": "a host reverses the gate's order",
    "failures_by_level": "a factor's levels fail unequally",
}


def flag_phrases(flags: Sequence[Mapping[str, Any]], final_stage: str | None) -> list[str]:
    """The review flags as short clauses, one per kind with the stages it was raised at (the
    final gate's own overlap is said in the verdict sentence itself)."""
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for f in flags:
        kind = str(f.get("kind"))
        if kind == "winner_overlaps_runner_up" and f.get("stage") == final_stage:
            continue
        by_kind.setdefault(kind, []).append(f)
    out = []
    for kind, raised in by_kind.items():
        if kind.endswith("_rank_correlation"):
            how = "reverse" if kind.startswith("negative") else "barely agree"
            out += [f"ranks {how} going into {f.get('stage')} ({f.get('detail')})" for f in raised]
            continue
        where = ", ".join(dict.fromkeys(str(f.get("stage")) for f in raised))
        earlier = " earlier" if kind == "winner_overlaps_runner_up" else ""
        out.append(
            f"{FLAG_PHRASES.get(kind, kind)} at {len(raised)}{earlier} gate"
            f"{'s' if len(raised) != 1 else ''} ({where})"
        )
    return out


def verdict(
    stages: Sequence[Mapping[str, Any]],
    flags: Sequence[Mapping[str, Any]],
    metric: str,
    facts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one-paragraph verdict: who the final decided gate put first, by how much over the
    runner-up, whether their 95% intervals are apart, and the review flags raised."""
    final = next((s for s in reversed(stages) if s.get("conditions")), None)
    facts = facts or {}
    prefix = (
        "Simulated campaign: "
        if facts.get("runs") and facts.get("simulated_runs") == facts.get("runs")
        else ""
    )
    if final is None:
        return {
            "sentence": prefix + "No gate has been decided yet: nothing was promoted.",
            "stage": None,
            "winner": None,
            "runner_up": None,
            "margin": None,
            "separated": None,
            "flags": flag_phrases(flags, None),
        }
    order = _pick(final["conditions"])
    winner = _side(order[0]) if order else None
    runner = _side(order[1]) if len(order) > 1 else None
    where = f"{final['name']} ({budget_label(final['budget_s'])})"
    if winner is None:
        return {
            "sentence": prefix + f"No condition has a mean at {where}.",
            "stage": final["name"],
            "winner": None,
            "runner_up": None,
            "margin": None,
            "separated": None,
            "flags": flag_phrases(flags, final["name"]),
        }
    verb = "was promoted at" if winner["promoted"] else "ranked first (not promoted) at"
    text = (
        f"{winner['name']} {verb} the final gate {where}: mean {metric} "
        f"{_interval(winner)} over {winner['n']} run(s)"
    )
    margin = separated = None
    if runner is not None:
        margin = runner["mean"] - winner["mean"]
        text += f", ahead of {runner['name']} ({_interval(runner)}) by {margin:.4f}"
        if None in (winner["ci_high"], runner["ci_low"], winner["ci_low"], runner["ci_high"]):
            text += "; without intervals (n = 1) separation is unknown"
        else:
            separated = winner["ci_high"] < runner["ci_low"]
            text += (
                "; the 95% intervals do not overlap: separated"
                if separated
                else "; the 95% intervals overlap: not separated"
            )
    else:
        text += "; no other condition was ranked there"
    phrases = flag_phrases(flags, final["name"])
    text += "." + (
        f" Review flags: {'; '.join(phrases)}." if phrases else " No other review flag was raised."
    )
    return {
        "sentence": prefix + text,
        "stage": final["name"],
        "winner": winner,
        "runner_up": runner,
        "margin": margin,
        "separated": separated,
        "flags": phrases,
    }


__all__ = [
    "caveats",
    "flag_phrases",
    "is_demo_key",
    "provenance",
    "provenance_rows",
    "run_facts",
    "verdict",
]
