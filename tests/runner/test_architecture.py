"""autoresearch's architecture knobs (`window_pattern`, `value_embeds`) and the one model path."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from runner import config, optim, schema, train
from runner.errors import UsageError
from runner.model import GPT, Attention, GPTConfig, norm, rotary, rotary_tables, window_mask


def _cfg(**kw):
    base = {"vocab_size": 256, "dim": 64, "depth": 8, "head_dim": 16, "seq_len": 64}
    return GPTConfig(**{**base, **kw})


@pytest.mark.parametrize(
    "pattern, depth, expected",
    [
        ("SSSL", 8, [32, 32, 32, 64, 32, 32, 32, 64]),  # autoresearch's default, tiled
        ("SSSL", 3, [32, 32, 64]),  # the last layer is always long
        ("S", 2, [32, 64]),
        ("L", 4, [64, 64, 64, 64]),  # the default: plain causal attention
        ("LS", 5, [64, 32, 64, 32, 64]),
    ],
)
def test_window_sizes_follow_autoresearch(pattern, depth, expected):
    assert _cfg(window_pattern=pattern, depth=depth).window_sizes() == expected


def test_value_embeddings_sit_on_alternating_layers_ending_with_the_last():
    assert [i for i in range(8) if _cfg(value_embeds=True).has_value_embed(i)] == [1, 3, 5, 7]
    assert [i for i in range(3) if _cfg(value_embeds=True, depth=3).has_value_embed(i)] == [0, 2]
    assert not any(_cfg().has_value_embed(i) for i in range(8))


def test_window_mask_is_flash_attention_semantics():
    mask = window_mask(6, 2)
    for i in range(6):
        assert [j for j in range(6) if mask[i, j]] == [j for j in range(max(0, i - 2), i + 1)]


def _attention_output(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    torch.manual_seed(0)
    attn = Attention(32, 2, 16, value_embed=False)
    cos, sin = rotary_tables(x.size(1), 16)
    return attn(x, None, cos, sin, mask)


def test_a_short_window_ignores_tokens_beyond_it():
    T, w = 12, 4
    x = torch.randn(1, T, 32, generator=torch.Generator().manual_seed(1))
    far, near = x.clone(), x.clone()
    far[0, 2] += 5.0  # 9 - 2 = 7 > w positions before query 9
    near[0, 5] += 5.0  # 9 - 5 = 4 = w: still seen
    base = _attention_output(x, window_mask(T, w))
    assert torch.equal(_attention_output(far, window_mask(T, w))[0, 9], base[0, 9])
    assert not torch.allclose(_attention_output(near, window_mask(T, w))[0, 9], base[0, 9])
    # a window as long as the sequence is plain causal attention
    full = _attention_output(x, window_mask(T, T))
    assert torch.allclose(full, _attention_output(x, None), atol=1e-6)


def test_rotary_is_the_half_split_rotation():
    D = 8
    x = torch.randn(1, 5, 1, 1, D, generator=torch.Generator().manual_seed(2))
    c, s = rotary_tables(5, D)
    inv = 1.0 / (10000.0 ** (torch.arange(0, D, 2, dtype=torch.float32) / D))
    ang = torch.arange(5, dtype=torch.float32)[:, None] * inv
    cos, sin = ang.cos()[None, :, None, None], ang.sin()[None, :, None, None]
    x1, x2 = x[..., : D // 2], x[..., D // 2 :]
    expected = torch.cat((x1 * cos + x2 * sin, -x1 * sin + x2 * cos), dim=-1)  # autoresearch's
    assert torch.allclose(rotary(x, c, s), expected, atol=1e-6)


def test_value_embedding_parameters_and_flops():
    plain, ve = GPT(_cfg(depth=2, dim=32)), GPT(_cfg(depth=2, dim=32, value_embeds=True))
    # layer 1 only: a 256 x 32 embedding and a (2 heads x 32 channels) gate
    assert ve.num_params() - plain.num_params() == 256 * 32 + 2 * 32
    # embeddings are lookups: only the gate adds 6 FLOPs per parameter
    assert ve.flops_per_token() - plain.flops_per_token() == 6 * 2 * 32
    gate = ve.blocks[1].attn.ve_gate
    assert gate is not None and torch.count_nonzero(gate.weight) == 0  # 2*sigmoid(0) = 1
    assert ve.blocks[0].attn.ve_gate is None


def test_windowed_flops_count_each_layer_context():
    sssl, full = GPT(_cfg(depth=4, window_pattern="SSSL")), GPT(_cfg(depth=4))
    heads, head_dim = 4, 16
    assert full.flops_per_token() - sssl.flops_per_token() == 3 * 12 * heads * head_dim * 32


def test_value_embeddings_train_with_the_token_embedding_and_gates_with_muon():
    cfg = config.resolve({"depth": 2, "aspect_ratio": 16, "head_dim": 16, "value_embeds": True})
    model = GPT(GPTConfig.from_runner(cfg, 256, config.shape(cfg).model_dim))
    adamw, muon = optim.build(model, cfg)
    ve = model.value_embeds["1"].weight
    group = next(g for g in adamw.param_groups if any(p is ve for p in g["params"]))
    assert group["lr"] == cfg["embedding_lr"] * (32 / 768) ** -0.5
    assert any(
        p is model.blocks[1].attn.ve_gate.weight for g in muon.param_groups for p in g["params"]
    )
    with torch.no_grad():  # output projections start at zero, which blocks value gradients
        for block in model.blocks:
            block.attn.c_proj.weight.normal_(0.0, 0.1)
    x = torch.randint(0, 256, (2, 16))
    model(x, x).backward()
    assert ve.grad is not None and ve.grad.abs().sum() > 0
    assert model.blocks[1].attn.ve_gate.weight.grad.abs().sum() > 0


def test_value_embedding_adds_to_the_values_through_a_unit_gate():
    torch.manual_seed(0)
    attn = Attention(32, 2, 16, value_embed=True)
    x, ve = torch.randn(1, 6, 32), torch.randn(1, 6, 32)
    cos, sin = rotary_tables(6, 16)

    def heads(t: torch.Tensor) -> torch.Tensor:
        return t.view(1, 6, 2, 16)

    with torch.no_grad():  # GPT inits the gate to zero: 2*sigmoid(0) = 1, values become v + ve
        attn.ve_gate.weight.zero_()
        got = attn(x, ve, cos, sin, None)
        qk = torch.stack((heads(attn.c_q(x)), heads(attn.c_k(x))), dim=2)
        q, k = norm(rotary(qk, cos, sin)).unbind(2)
        v = heads(attn.c_v(x) + ve)
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        expected = attn.c_proj(y.transpose(1, 2).reshape(1, 6, 32))
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("window_pattern", "SSXL", "letters S"),
        ("window_pattern", "sssl", "letters S"),
        ("window_pattern", "", "letters S"),
        ("window_pattern", 3, "letters S"),
        ("value_embeds", "yes", "true or false"),
    ],
)
def test_knob_values_are_checked(key, value, words):
    with pytest.raises(UsageError) as err:
        config.resolve({key: value})
    assert repr(key) in str(err.value) and words in str(err.value)


def test_knobs_replay_bit_for_bit_and_land_in_the_header(tmp_path, corpus, tiny_cfg):
    cfg = config.resolve({**tiny_cfg, "depth": 2, "window_pattern": "SL", "value_embeds": True})
    runs = []
    for name in ("a", "b"):
        log = tmp_path / f"{name}.jsonl"
        train.run(
            train.RunOptions(
                cfg=cfg,
                budget_s=60,
                seed=0,
                log=log,
                steps=6,
                device="cpu",
                data=str(corpus),
                threads=1,
            )
        )
        records = schema.validate_log(log)
        runs.append(
            [(r.get("loss"), r.get("val_bpb")) for r in records if r["type"] in ("step", "eval")]
        )
    header = records[0]
    assert header["window_pattern"] == "SL" and header["value_embeds"] is True
    assert runs[0] == runs[1] and all(
        math.isfinite(loss) for loss, _ in runs[0] if loss is not None
    )


def test_logs_from_before_the_knobs_validate_and_replay_as_the_model_of_their_time(
    tmp_path, corpus, tiny_cfg
):
    before = config.resolve({**tiny_cfg, **config.ABSENT_MEANS})  # the model before the keys
    log = tmp_path / "old.jsonl"
    train.run(
        train.RunOptions(
            cfg=before,
            budget_s=60,
            seed=0,
            log=log,
            steps=3,
            device="cpu",
            data=str(corpus),
            threads=1,
        )
    )
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    for key in config.ABSENT_MEANS:
        del lines[0][key]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert schema.validate_log(log)[0]["type"] == "header"
    from runner.replay import load_schedule

    assert len(load_schedule(log, before, 0)) == 3
    # today's default turns value embeddings on: an old log is not that model
    assert config.DEFAULTS["value_embeds"] is True
    with pytest.raises(UsageError, match="'value_embeds' differs"):
        load_schedule(log, tiny_cfg, 0)
