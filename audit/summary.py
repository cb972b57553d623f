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

from audit.rederive import AuditResult
from audit.report_model import (
    ConditionView,
    Facts,
    Flag,
    Provenance,
    Side,
    SignerView,
    StageView,
    Verdict,
)
from ledger.plan_model import RunnerIdentity
from stages.campaign import budget_label

TOOL_PACKAGES = ("gateledger", "torch", "numpy", "statsmodels", "duckdb", "matplotlib")


def run_facts(result: AuditResult) -> Facts:
    """Counts a reader needs first: runs, simulated runs, signers (demo or not), anchors, trust.

    Runs and simulated runs cover every manifest the audit saw (gates and baselines) plus
    unplanned compute; signers are the keys of every manifest and decision.
    """
    return Facts(
        runs=sum(s.runs for s in result.stages) + len(result.unplanned),
        simulated_runs=sum(s.sim_runs for s in result.stages),
        signers=[SignerView(**s.to_dict()) for s in result.signers],
        demo_key=any(s.demo for s in result.signers),
        anchors=result.anchors,
        trust=str(result.trust.get("trust", "store")),
        notes=list(result.notes),
        binding=result.binding.weakest,
    )


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for package in TOOL_PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def provenance(result: AuditResult) -> Provenance:
    """Where the evidence came from: runner identities and data hashes the manifests froze,
    torch versions, runner versions and devices the logs' headers state, hosts of the run
    records, and the versions of the tools that wrote this report. Counts are of runs
    (headers, hosts) or manifests (runner, data)."""
    runners: Counter[str] = Counter()
    data: Counter[str] = Counter()
    for manifest in result.manifests.values():
        runners[_runner_text(manifest.runner)] += 1
        data[_data_text(manifest.runner, manifest.data_sha256)] += 1
    torch: Counter[str] = Counter()
    devices: Counter[str] = Counter()
    log_runners: Counter[str] = Counter()
    hosts: Counter[str] = Counter()
    for run in result.runs.values():  # the audit's own parse of each log
        observed, log = run.observed, run.log
        hosts[str(observed.host)] += 1
        if log is None:
            log_runners[f"{observed.format} log without a header"] += 1
            continue
        torch[str(log.torch or "none (simulated)")] += 1
        devices[str(log.device or "?")] += 1
        log_runners[f"{log.runner or 'builtin'} {log.runner_version or ''}".strip()] += 1
    return Provenance(
        runner=dict(runners),
        data_sha256=dict(data),
        torch=dict(torch),
        devices=dict(devices),
        log_runners=dict(log_runners),
        hosts=dict(hosts),
        report_tools=_versions(),
    )


def _runner_text(runner: RunnerIdentity) -> str:
    if runner.kind == "adapter":
        return f"{runner.adapter} adapter: {runner.script}, script sha256 {runner.script_sha256}"
    if runner.command:
        return f"command: {runner.command} ({runner.format or 'autoresearch'} logs)"
    return f"{runner.kind} {runner.version or '?'}, code sha256 {runner.code_sha256 or 'none'}"


def _data_text(runner: RunnerIdentity, data_sha256: str | None) -> str:
    """The frozen data hash, or why there is none: a foreign runner reads its own data (the
    ledger never sees it), a builtin plan without one was frozen for the simulator alone."""
    if data_sha256:
        return data_sha256
    if runner.kind in ("command", "adapter"):
        return "not hashed (own runner: it reads its own data, outside the ledger's view)"
    return "none (a sim-only plan)"


def provenance_rows(prov: Provenance, facts: Facts) -> list[tuple[str, str]]:
    """(what, text) rows for the report's provenance table."""

    def counted(values: Mapping[str, int], unit: str) -> str:
        return (
            "; ".join(f"{k} ({n} {unit}{'s' if n != 1 else ''})" for k, n in sorted(values.items()))
            or "—"
        )

    tools = ", ".join(f"{k} {v}" for k, v in prov.report_tools.items() if v)
    signers = "; ".join(
        f"{s.name} [{s.key_id}] ({s.signed} object(s)" + (", a DEMO key)" if s.demo else ")")
        for s in facts.signers
    )
    return [
        ("runner (frozen in the manifests)", counted(prov.runner, "manifest")),
        ("data sha256 (frozen in the manifests)", counted(prov.data_sha256, "manifest")),
        ("runner the logs name", counted(prov.log_runners, "run")),
        ("torch the logs name", counted(prov.torch, "run")),
        ("devices", counted(prov.devices, "run")),
        ("hosts", counted(prov.hosts, "run")),
        ("signing keys", signers or "—"),
        ("anchors", f"{facts.anchors}" if facts.anchors else "none"),
        ("this report was made with", tools or "—"),
    ]


def _pick(conditions: Sequence[ConditionView]) -> list[ConditionView]:
    """Conditions in the gate's own order: its ranking first, then the rest by mean rank."""
    ranked = [c for c in conditions if c.mean is not None]
    return sorted(
        ranked,
        key=lambda c: (c.gate_rank is None, c.gate_rank or 0, c.rank or 1e9, c.name),
    )


def _side(c: ConditionView, stage: str) -> Side:
    return Side(
        name=c.name,
        condition=c.condition,
        mean=c.mean,
        ci_low=c.ci_low,
        ci_high=c.ci_high,
        n=c.n,
        promoted=c.promoted,
        stage=stage,
    )


def _interval(side: Side) -> str:
    mean = f"{side.mean:.4f}" if side.mean is not None else "no mean"
    if side.ci_low is None or side.ci_high is None:
        return f"{mean} (no interval)"
    return f"{mean} [{side.ci_low:.4f}, {side.ci_high:.4f}]"


def _separated(a: Side, b: Side) -> bool | None:
    """Whether the 95% intervals are apart (None without both intervals)."""
    if None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return None
    assert a.ci_low is not None and a.ci_high is not None  # for the type checker
    assert b.ci_low is not None and b.ci_high is not None
    return a.ci_high < b.ci_low or b.ci_high < a.ci_low


def closest_competitor(
    stages: Sequence[StageView], final: StageView, winner: ConditionView
) -> tuple[ConditionView, ConditionView, StageView] | None:
    """(competitor, the winner there, the stage) where the winner last met a condition
    that is not an always-kept anchor: the final gate's next-ranked such condition, else
    the best one cut at an earlier gate of the winner's lineage. An anchor is carried by
    the rule whatever it scores, so beating it says little about the choice made."""
    by_name = {s.name: s for s in stages}
    stage: StageView | None = final
    seen: set[str] = set()
    while stage is not None and stage.name not in seen:
        seen.add(stage.name)
        here = next((c for c in stage.conditions if c.condition == winner.condition), None)
        if here is None:
            return None
        rivals = [
            c
            for c in _pick(stage.conditions)
            if c.condition != winner.condition and c.name not in stage.keep
        ]
        if rivals:
            return rivals[0], here, stage
        stage = by_name.get(stage.from_stage) if stage.from_stage else None
    return None


def verdict(
    stages: Sequence[StageView],
    flags: Sequence[Flag],
    metric: str,
    facts: Facts | None = None,
) -> Verdict:
    """The one-paragraph verdict: who the final decided gate put first, by how much over its
    closest competitor where the two last ran side by side, whether their 95% intervals
    are apart, the anchor for scale, and the review flags raised."""
    final = next((s for s in reversed(stages) if s.conditions), None)
    prefix = (
        "Simulated campaign: "
        if facts is not None and facts.runs and facts.simulated_runs == facts.runs
        else ""
    )
    empty = {"runner_up": None, "anchor": None, "margin": None, "separated": None}
    if final is None:
        return Verdict(
            sentence=prefix + "No gate has been decided yet: nothing was promoted.",
            stage=None,
            winner=None,
            flags=flag_phrases(flags, None),
            **empty,
        )
    order = _pick(final.conditions)
    where = f"{final.name} ({budget_label(final.budget_s)})"
    phrases = flag_phrases(flags, final.name)
    if not order:
        return Verdict(
            sentence=prefix + f"No condition has a mean at {where}.",
            stage=final.name,
            winner=None,
            flags=phrases,
            **empty,
        )
    first = order[0]
    winner = _side(first, final.name)
    verb = "was promoted at" if winner.promoted else "ranked first (not promoted) at"
    text = (
        f"{winner.name} {verb} the final gate {where}: mean {metric} "
        f"{_interval(winner)} over {winner.n} run(s)"
    )
    anchor_c = next((c for c in order[1:] if c.name in final.keep), None)
    anchor = _side(anchor_c, final.name) if anchor_c is not None else None
    found = closest_competitor(stages, final, first)
    runner: Side | None = None
    margin = separated = None
    if found is not None:
        rival, mine, at = found
        runner, ours = _side(rival, at.name), _side(mine, at.name)
        if runner.mean is not None and ours.mean is not None:
            margin = runner.mean - ours.mean
        separated = _separated(ours, runner)
        how = (
            "; without intervals (n = 1) separation is unknown"
            if separated is None
            else (
                "; the 95% intervals do not overlap: separated"
                if separated
                else "; the 95% intervals overlap: not separated"
            )
        )
        gap = f" by {margin:.4f}" if margin is not None else ""
        if at.name == final.name:
            text += f", ahead of {runner.name} ({_interval(runner)}){gap}{how}"
        else:
            text += (
                f"; its closest competitor, {runner.name}, was cut at {at.name} "
                f"({budget_label(at.budget_s)}), where it measured {_interval(runner)} against "
                f"{ours.name}'s {_interval(ours)}{gap}{how}"
            )
    elif anchor is not None:
        runner = anchor
        text += "; no other condition was ranked with it, only the always-kept anchor"
    else:
        text += "; no other condition was ranked there"
    if anchor is not None and (runner is None or anchor.condition != runner.condition):
        text += f"; the always-kept anchor {anchor.name} measured {_interval(anchor)}"
    text += "." + (
        f" Review flags: {'; '.join(phrases)}." if phrases else " No other review flag was raised."
    )
    return Verdict(
        sentence=prefix + text,
        stage=final.name,
        winner=winner,
        runner_up=runner,
        anchor=anchor,
        margin=margin,
        separated=separated,
        flags=phrases,
    )


FLAG_PHRASES = {
    "winner_overlaps_runner_up": "the winner's interval overlaps the runner-up's",
    "host_reverses_order": "a host reverses the gate's order",
    "failures_by_level": "a factor's levels fail unequally",
}


def flag_phrases(flags: Sequence[Flag], final_stage: str | None) -> list[str]:
    """The review flags as short clauses, one per kind with the stages it was raised at (the
    final gate's own overlap is said in the verdict sentence itself)."""
    by_kind: dict[str, list[Flag]] = {}
    for f in flags:
        if f.kind == "winner_overlaps_runner_up" and f.stage == final_stage:
            continue
        by_kind.setdefault(f.kind, []).append(f)
    out = []
    for kind, raised in by_kind.items():
        if kind.endswith("_rank_correlation"):
            how = "reverse" if kind.startswith("negative") else "barely agree"
            out += [f"ranks {how} going into {f.stage} ({f.detail})" for f in raised]
            continue
        where = ", ".join(dict.fromkeys(f.stage for f in raised))
        earlier = " earlier" if kind == "winner_overlaps_runner_up" else ""
        out.append(
            f"{FLAG_PHRASES.get(kind, kind)} at {len(raised)}{earlier} gate"
            f"{'s' if len(raised) != 1 else ''} ({where})"
        )
    return out


__all__ = [
    "closest_competitor",
    "flag_phrases",
    "provenance",
    "provenance_rows",
    "run_facts",
    "verdict",
]
