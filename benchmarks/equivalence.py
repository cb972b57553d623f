"""Walk the demo and paper campaigns on the simulator and write what they recorded, normalised.

Why: a refactor of the command line or the API must leave a campaign's evidence unchanged.
Two walks can never store the same bytes (manifests carry `frozen_at`, and every id and
effective seed follows from it), so this writes the *normalised* bodies of every manifest,
decision and run record, and the JSON output of the commands that read them (audit, verify,
status, runs, reports, compare, evaluate, refusals), with each object id replaced by a label
naming what it is (`manifest:paper/gate-10m#0`, `run:demo/screen/<condition>/0/local`), key
ids by their key's name, and times and effective seeds blanked. Run it before and after a
change and `diff` the two files: any difference is a change of behaviour.

    python benchmarks/equivalence.py --out before.json
    ...change...
    python benchmarks/equivalence.py --out after.json && diff before.json after.json

It calls the `ledger` console script (`LEDGER` overrides the command), so the same script
checks any version of the package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEX = re.compile(r"\b[0-9a-f]{12,64}\b")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z)?")
TIME_KEYS = {
    "at",
    "frozen_at",
    "decided_at",
    "recorded_at",
    "started_at",
    "created_at",
    "revoked_at",
    "gen_time",
    "finished_at",
}
SEED_KEYS = {"effective_seed"}
# Values that follow from the clock: journal head hashes and anchor signatures (events carry
# times), wall durations.
CLOCK_KEYS = {"hash", "sig", "mean_run_s", "wall_s", "elapsed_s"}


class Walk:
    """One campaign walk in a fresh store, recording each command's exit code and output."""

    def __init__(self, tmp: Path, name: str, host: str | None = None) -> None:
        self.store = tmp / f"{name}.ledger"
        self.env = {
            **os.environ,
            "LEDGER_KEY_DIR": str(tmp / f"{name}-keys"),
            "PYTHONHASHSEED": "0",
        }
        for var in (
            "LEDGER_STORE",
            "LEDGER_KEY",
            "LEDGER_CAMPAIGN",
            "LEDGER_PASSPHRASE",
            "LEDGER_HOST",
        ):
            self.env.pop(var, None)
        if host:
            self.env["LEDGER_HOST"] = host
        self.outputs: list[dict[str, Any]] = []

    def ledger(self, *args: str, store: Path | None = None) -> Any:
        command = shlex.split(os.environ.get("LEDGER", "ledger"))
        argv = [*command, "--store", str(store or self.store), *args]
        proc = subprocess.run(
            argv, cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        try:
            out: Any = json.loads(proc.stdout)
        except ValueError:
            out = proc.stdout.splitlines()
        self.outputs.append(
            {
                "command": list(args),
                "exit": proc.returncode,
                "output": out,
                "stderr_last": (proc.stderr.strip().splitlines() or [""])[-1]
                if proc.returncode
                else "",
            }
        )
        return out


def walk_demo(tmp: Path) -> Walk:
    """Stage by stage through freeze/run/decide, with the refusals the API must keep."""
    w = Walk(tmp, "demo", host="local")
    camp = ["--campaign", "campaigns/demo.toml"]
    w.ledger("init", "--json")
    w.ledger("keygen", "--name", "walker", "--json")
    w.ledger("design", "2^(5-1)", "--json")
    w.ledger("design", "screen", *camp, "--json")
    for stage in ("screen", "gate", "confirm"):
        w.ledger("freeze", stage, *camp, "--sim-only", "--json")
        w.ledger("freeze", stage, *camp, "--sim-only", "--json")  # refused: already frozen
        w.ledger("run", stage, *camp, "--executor", "sim", "--json")
        w.ledger("decide", stage, *camp, "--json")
        w.ledger("decide", stage, *camp, "--json")  # refused: already decided
    w.ledger("status", *camp, "--json")
    w.ledger("runs", "--json")
    w.ledger("runs", "--csv")
    w.ledger("verify", "--json")
    w.ledger("audit", "--json")
    w.ledger("audit")
    w.ledger("report", "costs", *camp, "--json")
    w.ledger("report", "effects", *camp, "--json")
    w.ledger("anchor", "--json")
    w.ledger("keys", "--json")
    w.ledger(
        "sql", "SELECT stage, status, count(*) AS n FROM runs GROUP BY 1, 2 ORDER BY 1, 2", "--json"
    )
    w.ledger("verify", "--json")
    return w


def walk_paper(tmp: Path) -> Walk:
    """The whole campaign in one command, then baselines, compare and an evaluation."""
    w = Walk(tmp, "paper")
    camp = ["--campaign", "campaigns/paper.toml"]
    w.ledger("init", "--json")
    w.ledger("keygen", "--name", "walker", "--json")
    w.ledger("campaign", *camp, "--executor", "sim", "--json")
    w.ledger(
        "baseline",
        "greedy",
        *camp,
        "--budget",
        "10m",
        "--seeds",
        "0,1",
        "--hosts",
        "a100,l40s",
        "--executor",
        "sim",
        "--json",
    )
    w.ledger(
        "baseline",
        "random",
        *camp,
        "--budget",
        "10m",
        "--seeds",
        "0,1",
        "--hosts",
        "a100,l40s",
        "--match",
        "campaign",
        "--executor",
        "sim",
        "--json",
    )
    w.ledger("compare", *camp, "--json")
    w.ledger("status", *camp, "--json")
    w.ledger("runs", "--json")
    w.ledger("audit", "--json")
    w.ledger("report", "costs", *camp, "--json")
    w.ledger("report", "effects", *camp, "--json")
    w.ledger("report", "costs", *camp)
    w.ledger("evaluate", *camp, "--trials", "4", "--against", "random", "--json")
    return w


def stored_bytes(store: Path) -> list[tuple[str, bytes]]:
    """(id, bytes) of every object in the store, loose or packed, read by the documented
    layout (docs/ledger.md) rather than through the package, so any version is compared."""
    found = {}
    for path in sorted(store.glob("parts/*/objects/*/*")):
        if not path.name.startswith("."):
            found[path.name] = path.read_bytes()
    for path in sorted(store.glob("parts/*/packs/*.pack")):
        head, _, data = path.read_bytes().partition(b"\n\n")
        for line in head.split(b"\n")[1:]:
            oid, offset, length = line.decode().split(" ")
            found.setdefault(oid, data[int(offset) : int(offset) + int(length)])
    return sorted(found.items())


def store_objects(store: Path) -> list[tuple[str, dict[str, Any] | None]]:
    """(id, parsed JSON object or None for raw bytes) for every object in the store."""
    out = []
    for oid, data in stored_bytes(store):
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            obj = None
        out.append((oid, obj if isinstance(obj, dict) and "kind" in obj else None))
    return out


def labels(stores: list[Path]) -> dict[str, str]:
    """Object id -> what it is; key id -> key name. Condition ids (config hashes) stay."""
    names: dict[str, str] = {}
    objects = [(oid, obj) for store in stores for oid, obj in store_objects(store)]
    manifests = sorted(
        (
            (obj["body"].get("frozen_at", ""), oid, obj["body"])
            for oid, obj in objects
            if obj and obj["kind"] == "manifest"
        )
    )
    seen: dict[str, int] = {}
    for _, oid, body in manifests:
        where = f"{body['campaign']}/{body['stage']}"
        names[oid] = f"manifest:{where}#{seen.get(where, 0)}"
        seen[where] = seen.get(where, 0) + 1
    for oid, obj in objects:
        if not obj:
            continue
        body = obj["body"]
        if obj["kind"] == "decision":
            names[oid] = "decision:" + names.get(body.get("manifest"), "?").split(":", 1)[1]
        elif obj["kind"] == "run":
            where = names.get(body.get("manifest"), "manifest:unplanned").split(":", 1)[1]
            cell = f"{where}/{body.get('condition')}/{body.get('seed')}/{body.get('host')}"
            names[oid] = f"run:{cell}"
            for field, kind in (("raw_log", "log"), ("stderr", "stderr")):
                if body.get(field):
                    names[body[field]] = f"{kind}:{cell}"
        elif obj["kind"] == "timestamp":
            names[oid] = f"timestamp:{body.get('object')}"
    anchors = sorted(
        (obj["body"].get("at", ""), oid) for oid, obj in objects if obj and obj["kind"] == "anchor"
    )
    for i, (_, oid) in enumerate(anchors):
        names[oid] = f"anchor:{i}"
    for store in stores:
        for path in (store / "keys").glob("*.json"):
            record = json.loads(path.read_text())
            names[record["key_id"]] = f"key:{record.get('name')}"
    return names


def normalise(value: Any, names: dict[str, str], key: str = "") -> Any:
    """Ids to labels, times and effective seeds blanked; lists of ids sorted by label."""
    if key in TIME_KEYS and value is not None:
        return "<time>"
    if key in SEED_KEYS and value is not None:
        return "<seed>"
    if key in CLOCK_KEYS and value is not None:
        return "<clock>"
    if isinstance(value, float):
        # Guards against last-bit differences in sums (none are known: the variance
        # decomposition sorts its rows).
        return 0.0 if abs(value) < 1e-15 else float(f"{value:.12g}")
    if isinstance(value, dict):
        return {names.get(k, k): normalise(v, names, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [normalise(v, names) for v in value]
        if value and all(isinstance(v, str) and v in names for v in value):
            items.sort()
        return items
    if isinstance(value, str):
        text = names.get(value)
        if text is not None:
            return text

        def label(match: re.Match[str]) -> str:
            hexes = match.group(0)
            if hexes in names:
                return names[hexes]
            full = [v for k, v in names.items() if k.startswith(hexes)]
            return full[0] if len(full) == 1 else hexes

        return ISO_TIME.sub("<time>", HEX.sub(label, value))
    return value


def bodies(store: Path, names: dict[str, str]) -> dict[str, Any]:
    """Every manifest, decision and run record body, by label (signatures left out)."""
    out = {}
    for oid, obj in store_objects(store):
        if obj and obj["kind"] in ("manifest", "decision", "run"):
            out[names.get(oid, oid)] = normalise(obj["body"], names)
    return dict(sorted(out.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="Where to write the normalised JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="equivalence-") as tmp:
        walks = [walk_demo(Path(tmp)), walk_paper(Path(tmp))]
        names = labels([w.store for w in walks])
        result = {
            w.store.stem: {
                "objects": bodies(w.store, names),
                "commands": normalise(w.outputs, names),
            }
            for w in walks
        }
        text = json.dumps(result, indent=1, sort_keys=True).replace(tmp, "<tmp>")
    Path(args.out).write_text(text + "\n")
    unlabelled = sorted(set(re.findall(r"\b[0-9a-f]{64}\b", text)))
    print(
        f"wrote {args.out}: {sum(len(r['objects']) for r in result.values())} objects, "
        f"{sum(len(r['commands']) for r in result.values())} commands, "
        f"{len(unlabelled)} distinct unlabelled 64-hex strings (condition ids)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
