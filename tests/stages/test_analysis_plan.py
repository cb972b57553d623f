"""The frozen analysis plan inside a campaign, through the real ledger, on planted truth.

Each answer is computed here independently of the effect code: contrasts of condition means,
textbook term lists, and the planted surface of the simulator.
"""

from __future__ import annotations

import json

import pytest

from ledger.errors import LedgerError
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import parse_campaign
from stages.decide import decide_stage
from stages.designs import fractional, point_name
from stages.execute import run_stage
from stages.executors.base import RunResult
from stages.executors.sim import SimExecutor
from stages.lookup import current_manifest
from stages.plan import freeze_stage
from stages.stats import estimate_effects
from stages.surface import SimParams

BASE = """
[base]
depth = 3
aspect_ratio = 48
device_batch_size = 8
total_batch_size = 2048
matrix_lr = 0.02
embedding_lr = 0.2
warmdown_ratio = 0.4
"""
FACTORS5 = """
[factors]
A = { key = "total_batch_size", levels = [1024, 4096] }
B = { key = "depth", levels = [2, 4] }
C = { key = "aspect_ratio", levels = [32, 64] }
D = { key = "matrix_lr", levels = [0.01, 0.04] }
E = { key = "warmdown_ratio", levels = [0.2, 0.6] }
"""


class Env:
    def __init__(self, tmp_path, text, name="c"):
        self.path = tmp_path / f"{name}.toml"
        self.path.write_text(text)
        self.camp = parse_campaign(text, self.path)
        self.store = Store.init(tmp_path / f".ledger-{name}", host="h1")
        self.key = generate_key(f"k-{name}")
        letters = "".join(f.letter for f in self.camp.factors)
        self.sim = SimExecutor(SimParams.from_table(self.camp.sim, letters))

    def stage(self, name, executor=None):
        freeze_stage(self.store, self.camp, name, self.key, for_simulation=True)
        run_stage(self.store, self.camp, name, executor or self.sim, key=self.key, progress=False)
        _, decision = decide_stage(self.store, self.camp, name, self.key)
        body = decision.to_dict()  # the decision's JSON, as signed
        json.dumps(body, allow_nan=False)
        return body

    def manifest(self, name):
        return current_manifest(self.store, self.camp.name, name).body.to_dict()


class Shifted:
    """The simulator, with one named condition's metric moved by `by` (a different recipe)."""

    def __init__(self, sim, name, by):
        self.sim, self.target, self.by, self.name = sim, name, by, sim.name

    def execute(self, tasks, on_start):
        for result in self.sim.execute(tasks, on_start):
            if result.task.name != self.target:
                yield result
                continue
            lines = []
            for line in result.raw.decode().splitlines():
                rec = json.loads(line)
                if rec.get("val_bpb") is not None:
                    rec["val_bpb"] = round(rec["val_bpb"] + self.by, 6)
                lines.append(json.dumps(rec))
            yield RunResult(result.task, ("\n".join(lines) + "\n").encode())


def contrast(body, manifest, letter):
    """mean(+) - mean(-) over the design points' condition means (balanced: = the effect)."""
    means = {c["condition"]: c["mean"] for c in body["statistics"]["conditions"]}
    points = manifest["analysis"]["points"]
    coded = {cid: manifest["conditions"][cid]["coded"] for cid in points}
    hi = [means[c] for c in points if coded[c][letter] == 1]
    lo = [means[c] for c in points if coded[c][letter] == -1]
    return sum(hi) / len(hi) - sum(lo) / len(lo)


ANCHOR = f"""
[campaign]
name = "anchor"
{BASE}
[factors]
A = {{ key = "total_batch_size", levels = [1024, 4096] }}
B = {{ key = "depth", levels = [2, 4] }}
C = {{ key = "aspect_ratio", levels = [32, 64] }}

[conditions]
hot = {{ A = -1, B = -1, C = -1, embedding_lr = 0.6 }}   # at design levels, another key

[[stages]]
name = "screen"
budget = "2m"
design = "full"
seeds = [0, 1]
hosts = ["h1"]
add = ["hot"]
rule = {{ fdr = 0.05, reduce = true }}

[[stages]]
name = "refine"
budget = "10m"
from = "screen"
seeds = [0, 1]
hosts = ["h1"]
rule = {{ top_k = 1 }}

[sim]
intercept = 1.5
ref_budget = 120
effects = {{ A = 0.30, B = 0.05 }}
noise = 0.002
"""


def test_anchor_at_design_levels_never_enters_effects_or_reduce(tmp_path):
    env = Env(tmp_path, ANCHOR)
    body = env.stage("screen", Shifted(env.sim, "hot", 0.5))
    manifest = env.manifest("screen")
    hot = next(c for c, i in manifest["conditions"].items() if i["name"] == "hot")
    assert manifest["conditions"][hot]["coded"] == {"A": -1, "B": -1, "C": -1}
    assert hot not in manifest["analysis"]["points"] and len(manifest["analysis"]["points"]) == 8
    effects = {e["term"]: e for e in body["statistics"]["effects"]["effects"]}
    for letter in "ABC":
        assert effects[letter]["effect"] == pytest.approx(
            contrast(body, manifest, letter), rel=1e-9, abs=1e-12
        )
    assert effects["A"]["effect"] == pytest.approx(0.30, abs=0.01)  # the planted truth
    # reduce: A and B fixed at -1 (they raise the metric); C free -> (1) and c, the design's
    # own points: the anchor coded like (1) is not promoted in its place
    assert body["outcome"]["significant"] == ["A", "B"]
    names = sorted(body["conditions"][c]["name"] for c in body["promoted"])
    assert names == ["(1)", "c"] and hot not in body["promoted"]
    # the next stage analyses that reduced factorial: a regular 2^1 in C, not post-selection
    refine = env.stage("refine")
    plan = env.manifest("refine")["analysis"]
    assert plan["structure"]["label"] == "2^1" and plan["post_selection"] is False
    assert plan["terms"] == ["C"] and plan["dropped"] == ["A", "B", "AB", "AC", "BC"]
    assert plan["dropped_reasons"]["A"] == "factor A is constant in these rows"
    assert refine["statistics"]["effects"]["post_selection"] is False


def screen_campaign(
    interactions: str, diverge: str = "", seeds="[0]", hosts='["h1"]', gate_rule="{ top_k = 2 }"
) -> str:
    return f"""
[campaign]
name = "five"
{BASE}
{FACTORS5}
[conditions]
base = {{ }}

[[stages]]
name = "screen"
budget = "2m"
design = "fractional"
runs = 16
seeds = {seeds}
hosts = {hosts}
rule = {{ top_k = 3, keep = ["base"], fdr = 0.05 }}

[[stages]]
name = "gate"
budget = "10m"
from = "screen"
seeds = [0, 1]
hosts = ["h1", "h2"]
rule = {gate_rule}

[sim]
intercept = 1.5
ref_budget = 120
effects = {{ A = 0.04, B = -0.03 }}
interactions = {{ {interactions} }}
noise = 0.003
{diverge}
"""


MAINS = ["A", "B", "C", "D", "E"]
TWO_FIS = ["AB", "AC", "AD", "AE", "BC", "BD", "BE", "CD", "CE", "DE"]


def test_default_plan_of_the_unreplicated_half_fraction(tmp_path):
    env = Env(tmp_path, screen_campaign(""))
    freeze_stage(env.store, env.camp, "screen", env.key, for_simulation=True)
    plan = env.manifest("screen")["analysis"]
    # resolution V: every main effect and two-factor interaction, saturated, by Lenth
    assert plan["terms"] == MAINS + TWO_FIS and plan["method"] == "lenth"
    assert plan["design"]["label"] == "2^(5-1) V" and plan["structure"]["resolution"] == 5
    assert plan["post_selection"] is False and plan["dropped"] == [] and plan["block"] is None
    assert sorted(plan["points"].values()) == sorted(point_name(r) for r in fractional(5, 1).runs)


def test_replicated_screen_is_ols_with_the_host_block(tmp_path):
    env = Env(tmp_path, screen_campaign("", hosts='["h1", "h2"]'))
    body = env.stage("screen")
    plan = env.manifest("screen")["analysis"]
    assert plan["method"] == "ols" and plan["block"] == "host" and len(plan["terms"]) == 15
    effects = body["statistics"]["effects"]
    # 32 runs - (intercept + host + 15 terms) = 15 residual df
    assert effects["method"] == "ols" and effects["df_resid"] == 15 and effects["block"] == "host"


def test_promoted_subset_is_post_selection_and_fdr_on_it_is_refused(tmp_path):
    env = Env(tmp_path, screen_campaign(""))
    env.stage("screen")
    gate = env.stage("gate")
    plan = env.manifest("gate")["analysis"]
    base = next(c for c, i in env.manifest("gate")["conditions"].items() if i["name"] == "base")
    assert base not in plan["points"] and len(plan["points"]) == 3  # the promoted design points
    assert plan["post_selection"] is True and plan["method"] == "ols"
    effects = gate["statistics"]["effects"]
    assert effects["post_selection"] is True and all(e["q"] is None for e in effects["effects"])
    # a rule that asks BH of such a set is refused before anything is signed
    env2 = Env(tmp_path, screen_campaign("", gate_rule="{ top_k = 2, fdr = 0.05 }"), "fdr")
    env2.stage("screen")
    with pytest.raises(LedgerError, match=r"stage 'gate' rule key 'fdr': .*post-selection"):
        freeze_stage(env2.store, env2.camp, "gate", env2.key, for_simulation=True)


def test_planted_interaction_is_found_and_does_not_inflate_main_p_values(tmp_path):
    """AD = 0.05 (batch size x learning rate) in an unreplicated 2^(5-1), noise sd 0.003."""
    planted = Env(tmp_path, screen_campaign("AD = 0.05"), "with")
    with_ad = planted.stage("screen")
    without = Env(tmp_path, screen_campaign(""), "without").stage("screen")
    eff = {e["term"]: e for e in with_ad["statistics"]["effects"]["effects"]}
    clean = {e["term"]: e for e in without["statistics"]["effects"]["effects"]}
    assert eff["AD"]["effect"] == pytest.approx(0.05, abs=0.01)
    assert eff["AD"]["p"] < 0.01 and eff["AD"]["q"] < 0.05  # found, in the interaction family
    assert eff["AD"]["aliases"] == ["BCE"]
    # the interaction is a contrast of its own, not error: Lenth's PSE (a trimmed median of the
    # 15 contrasts) moves by at most a neighbouring order statistic, and A, B stay clear
    pse = with_ad["statistics"]["effects"]["pse"] / without["statistics"]["effects"]["pse"]
    assert 2 / 3 < pse < 1.5
    for term in ("A", "B"):
        assert eff[term]["p"] < 1e-4 and clean[term]["p"] < 1e-4
    assert set(with_ad["outcome"]["significant"]) >= {"A", "B"}
    # the old analysis (main effects only, 10 df pooled from the 2FIs), recomputed here on the
    # same runs: the interaction inflates the error and A's p-value with it
    means = {c["condition"]: c["mean"] for c in with_ad["statistics"]["conditions"]}
    manifest = planted.manifest("screen")
    rows = [
        {**manifest["conditions"][cid]["coded"], "value": means[cid]}
        for cid in manifest["analysis"]["points"]
    ]
    old = estimate_effects(rows, MAINS, terms="main")
    assert old.df_resid == 10 and old.term("A").p > 50 * eff["A"]["p"]
    assert old.term("B").q > 0.05  # and BH at 0.05 would no longer find B


def test_diverging_factor_level_is_flagged_and_excluded(tmp_path):
    runs = fractional(5, 1).runs
    diverging = [point_name(r) for r in runs if r["D"] == 1]  # a learning rate that blows up
    diverge = "diverge = [" + ", ".join(f'"{n}"' for n in diverging) + "]"
    env = Env(tmp_path, screen_campaign("", diverge=diverge))
    body = env.stage("screen")
    failures = body["statistics"]["failures"]
    d = failures["factors"]["D"]
    assert (d["high"]["failed"], d["high"]["runs"], d["low"]["failed"]) == (8, 8, 0)
    assert failures["flagged"] == ["D"]
    assert any(
        f["kind"] == "failures_by_level" and f["detail"].startswith("D (matrix_lr)")
        for f in body["statistics"]["flags"]
    )
    excluded = {
        body["conditions"].get(e["condition"], {}).get("name") or e["condition"]
        for e in body["outcome"]["excluded"]
    }
    assert len(body["outcome"]["excluded"]) == 8 and len(excluded) == 8
    assert "8 of 16 design-point runs failed" in body["statistics"]["effects"]["notes"][0]


def test_two_promoted_points_moving_together_are_post_selection(tmp_path):
    """Two points that differ in D and E together are a coset (I = -DE) but of resolution II:
    D and E cannot be told apart, so the set is not an orthogonal design for main effects."""
    from ledger.plan_model import PlannedCondition
    from stages.conditions import point_condition
    from stages.plan import ParentGate, analysis_plan, candidates

    env = Env(tmp_path, screen_campaign(""))
    camp = env.camp
    pts = [{"A": 1, "B": 1, "C": 1, "D": -1, "E": 1}, {"A": 1, "B": 1, "C": 1, "D": 1, "E": -1}]
    conds = [point_condition(camp.base, camp.factors, p, point_name(p), "reduce") for p in pts]
    parent = ParentGate(
        "d" * 64,
        [c.id for c in conds],
        {c.id: PlannedCondition.model_validate(c.to_dict()) for c in conds},
    )
    stage = camp.stage("gate")
    plan = analysis_plan(camp, stage, candidates(camp, stage, parent), parent)
    assert plan["structure"]["regular"] and plan["structure"]["resolution"] == 2
    assert plan["structure"]["defining_relation"] == ["I", "-DE"]
    assert plan["post_selection"] is True and plan["terms"] == ["D"]
    assert plan["dropped_reasons"]["E"] == "aliased with -D"
