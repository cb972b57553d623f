"""What a decision is computed from: the declared run records it uses, and their observations.

Why a module of its own: gate decisions (`stages.decide`), baseline steps
(`stages.baseline_rule`) and the audit (`audit.gates`, `audit.rederive`) all select runs and
read observations the same way; here none of them has to import another to share it.
"""

from __future__ import annotations

from typing import Any


def run_key(body: dict[str, Any]) -> str:
    return f"{body.get('condition')}/{body.get('seed')}/{body.get('host')}"


def select_runs(
    manifest_id: str, manifest: dict[str, Any], runs: list[tuple[str, dict[str, Any]]]
) -> tuple[dict[str, tuple[str, dict]], list[str], list[str]]:
    """Split run records into the declared ones used (first per key), missing keys, extras."""
    declared = {f"{r['condition']}/{r['seed']}/{r['host']}" for r in manifest["runs"]}
    used: dict[str, tuple[str, dict]] = {}
    extra: list[str] = []
    for rid, body in sorted(runs, key=lambda rb: (rb[1].get("recorded_at", ""), rb[0])):
        key = run_key(body)
        if body.get("manifest") != manifest_id or key not in declared:
            extra.append(rid)
        elif key not in used:
            used[key] = (rid, body)
    return used, sorted(declared - set(used)), sorted(extra)


def decision_head(
    manifest_id: str,
    manifest: dict[str, Any],
    used: dict[str, tuple[str, dict]],
    missing: list[str],
    extra: list[str],
) -> dict[str, Any]:
    """What every decision body starts with: which manifest, and which runs it judged."""
    return {
        "campaign": manifest["campaign"],
        "stage": manifest["stage"],
        "manifest": manifest_id,
        "budget_s": manifest["budget_s"],
        "runs": sorted(rid for rid, _ in used.values()),
        "missing": missing,
        "extra": extra,
    }


def observations(
    used: dict[str, tuple[str, dict]], metric: str = "val_bpb"
) -> list[dict[str, Any]]:
    """One observation per run: its status and, for an ok run, its value of `metric`."""
    obs = []
    for rid, body in used.values():
        value = body.get("metrics", {}).get(metric)
        ok = (
            body.get("status") == "ok"
            and isinstance(value, int | float)
            and not isinstance(value, bool)
        )
        obs.append(
            {
                "condition": body["condition"],
                "seed": body["seed"],
                "host": body["host"],
                "status": body.get("status"),
                "value": float(value) if ok else None,
                "run": rid,
            }
        )
    return sorted(obs, key=lambda o: (o["condition"], o["seed"], o["host"]))
