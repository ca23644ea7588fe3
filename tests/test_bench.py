"""The benchmark app at tiny size: it runs, reports what it promises, and shares the weights it says it does."""

from __future__ import annotations

import json

import pytest
import torch

from DeBERTa import deberta
from DeBERTa.apps import bench

pytest.importorskip("transformers")


def test_tiny_benchmark_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    status = bench.main(["--model", "tiny", "--dtype", "fp32,bf16", "--forward", "2x16", "--train", "2x16",
                         "--memory", "2x24", "--repeats", "2", "--warmup", "0", "--threads", "1", "--quiet",
                         "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())

    timed = {(r["case"], r["dtype"], r["model"]) for r in data["results"]}
    for model in ("ours", "ours-recomputed", "deberta", "bert"):
        assert ("forward 2x16", "fp32", model) in timed
    assert ("train 2x16", "fp32", "ours") in timed and ("train 2x16", "bf16", "ours") in timed
    for r in data["results"]:
        assert len(r["times_ms"]) == 2 and r["min_ms"] <= r["median_ms"] <= r["max_ms"] and r["tokens_per_s"] > 0
    # transformers' DeBERTa cannot run under bf16 autocast: reported, not hidden
    failed = {(f["case"], f["model"]) for f in data["failures"]}
    assert failed <= {("forward 2x16", "deberta"), ("train 2x16", "deberta")}

    baselines = {(r["case"], r["dtype"], r["model"], r["baseline"]) for r in data["ratios"]}
    assert ("forward 2x16", "fp32", "ours", "deberta") in baselines
    assert ("forward 2x16", "bf16", "ours", "ours fp32") in baselines
    assert all(r["speedup"] > 0 for r in data["ratios"])

    (accuracy,) = data["accuracy"]
    assert accuracy["dtype"] == "bf16" and 0 < accuracy["norm_relative"] < 0.05

    memory = data["memory"]["train 2x24 fp32"]
    assert set(memory) == {"ours", "deberta", "bert"}
    for m in memory.values():
        assert m["peak_bytes"] == m["held_bytes"] + m["step_increase_bytes"]
        assert m["step_increase_bytes"] > 0 and m["held_bytes"] > 0
    assert not data["goals_apply"]  # the goals are for base size
    assert "this DeBERTa" in printed and "speed-up" in printed and "peak tensor memory" in printed


@pytest.mark.parametrize("argv,message", [
    (["--forward", "8by128"], "not BATCHxLENGTH"),
    (["--dtype", "fp8"], "unknown dtype fp8"),
    (["--compare", "gpt2"], "unknown model to compare with gpt2"),
    (["--model", "huge"], "--model: unknown model preset"),
    (["--repeats", "1"], "--repeats must be at least 2"),
    (["--repeats", "x"], "argument --repeats: invalid int value: 'x'"),
])
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    quick = ["--model", "tiny", "--forward", "2x8", "--train", "", "--memory", "", "--quiet"]
    assert bench.main(quick + argv) == 2  # the later flag wins
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_projections_recomputed_restores_the_previous_setting(monkeypatch):
    attention = bench.DisentangledSelfAttention
    for before in (True, False):
        monkeypatch.setattr(attention, "reuse_position_projections", before)
        with bench.projections_recomputed():
            assert attention.reuse_position_projections is False
        assert attention.reuse_position_projections is before


def test_bert_gets_our_weights():
    """Without relative attention, with absolute positions and token types, BERT is our model exactly."""
    config = deberta.ModelConfig.preset("tiny", relative_attention=False, pos_att_type=(), position_biased_input=True,
                                        type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    models = bench.build_models(config, ["bert"], train=False, device=torch.device("cpu"), seed=0)
    with torch.no_grad():  # BERT adds the embedding of type 0 when given no types; ours adds none
        models["bert"].embeddings.token_type_embeddings.weight[0].zero_()
    batch = bench.make_batch(bench.Shape(2, 16), config.vocab_size, torch.device("cpu"), seed=0)
    ours = bench.forward_fn("ours", models["ours"], batch, bench.autocaster(torch.device("cpu"), "fp32"))()
    bert = bench.forward_fn("bert", models["bert"], batch, bench.autocaster(torch.device("cpu"), "fp32"))()
    torch.testing.assert_close(ours, bert, rtol=1e-5, atol=1e-5)


def test_peak_memory_counts_what_a_step_allocates():
    size = 4 * 2**20

    def step():
        a = torch.ones(size // 4)  # float32: `size` bytes
        b = a * 2  # another `size` bytes, both alive
        return float(b[0])

    peak = bench.peak_increase_bytes(step, torch.device("cpu"))
    assert 2 * size <= peak < 2 * size + 2**20
