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
                         "--compare", "deberta,bert", "--json", str(out)])
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
    bf16_goals = [g for g in data["goals"] if "bf16 faster than fp32" in g["goal"]]  # the speed goals here
    assert bf16_goals and all(g["rounds"] == 2 and 0 <= g["rounds_met"] <= 2 for g in bf16_goals)
    assert "this DeBERTa" in printed and "speed-up" in printed and "peak tensor memory" in printed


def test_onnx_runtime_is_a_peer_in_the_forward_cases(tmp_path, capsys, monkeypatch):
    """--compare onnx: the bench's own encoder exported and timed in ONNX Runtime (fp32 forwards only)."""
    if not bench.onnx_installed():
        pytest.skip("the onnx extra is not installed")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temporary))  # where the bench's export folder goes
    from DeBERTa.apps import onnx_export

    exports, export_onnx = [], onnx_export.export_onnx
    monkeypatch.setattr(onnx_export, "export_onnx", lambda *a, **kw: exports.append(a[3]) or export_onnx(*a, **kw))
    out = tmp_path / "bench.json"
    status = bench.main(["--model", "tiny", "--dtype", "fp32,bf16", "--forward", "2x16,1x24", "--train", "2x16",
                         "--memory", "", "--repeats", "2", "--warmup", "0", "--threads", "1", "--quiet",
                         "--compare", "onnx", "--json", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert not data["failures"]
    timed = {(r["case"], r["dtype"], r["model"]) for r in data["results"]}
    assert {("forward 2x16", "fp32", "onnx"), ("forward 1x24", "fp32", "onnx")} <= timed
    assert not {model for case, dtype, model in timed if model == "onnx" and (dtype != "fp32" or "train" in case)}
    ratios = {(r["case"], r["model"], r["baseline"]) for r in data["ratios"] if r["dtype"] == "fp32"}
    assert {("forward 2x16", "ours", "onnx"), ("forward 1x24", "ours", "onnx")} <= ratios
    assert data["environment"]["onnxruntime"] and "ONNX Runtime (this DeBERTa's export)" in printed
    assert len(exports) == 1 and exports[0].parent == temporary  # one export for both cases, in a temporary folder
    assert not list(temporary.glob("deberta-bench-onnx-*"))  # removed after (torch may keep its own caches there)


def test_speed_goals_are_judged_on_the_median_and_counted_per_round():
    timings = [bench.Timing("forward 2x8", "fp32", "bert", 16, [100.0, 100.0, 100.0]),
               bench.Timing("forward 2x8", "fp32", "ours", 16, [90.0, 110.0, 95.0])]
    speedups = bench.paired_speedup(timings, "forward 2x8", ("ours", "fp32"), ("bert", "fp32"))
    assert speedups["speedup_by_round"] == pytest.approx([100 / 90, 100 / 110, 100 / 95])
    assert speedups["speedup"] == pytest.approx(100 / 95) and speedups["speedup_of_minima"] == pytest.approx(100 / 90)

    faster = bench.speed_goal("at least 1.05× as fast", speedups, lambda value: value >= 1.05)
    assert faster["met"] and (faster["rounds_met"], faster["rounds"]) == (2, 3)
    assert faster["value"] == pytest.approx(100 / 95)
    # As a ratio of times: 0.9, 1.1, 0.95 of the baseline's, median 0.95; the fastest runs give 0.9.
    within = bench.speed_goal("within 0.92× the time", speedups, lambda value: value <= 0.92, as_time=True)
    assert not within["met"] and (within["rounds_met"], within["rounds"]) == (1, 3)
    assert within["value"] == pytest.approx(0.95) and within["value_of_minima"] == pytest.approx(0.9)


@pytest.mark.parametrize("argv,message", [
    (["--forward", "8by128"], "not BATCHxLENGTH"),
    (["--dtype", "fp8"], "unknown dtype fp8"),
    (["--compare", "gpt2"], "unknown model to compare with gpt2"),
    (["--compare", "onnx", "--device", "cuda"], "--compare onnx times ONNX Runtime on the CPU"),
    (["--model", "huge"], "--model: unknown model preset"),
    (["--repeats", "1"], "--repeats must be at least 2"),
    (["--repeats", "x"], "argument --repeats: invalid int value: 'x'"),
    (["--compare", "deberta,disentangled-flash"], "--compare disentangled-flash: it has DeBERTa v2/v3 models only"),
])
def test_bad_flags_are_one_line_errors(argv, message, capsys):
    quick = ["--model", "tiny", "--forward", "2x8", "--train", "", "--memory", "", "--quiet"]
    assert bench.main(quick + argv) == 2  # the later flag wins
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_attention_options_come_back_after_the_block() -> None:
    """bench's ``ours-recomputed`` switches reuse off with attention.options; nested blocks restore in order."""
    from DeBERTa.deberta import attention

    assert attention.current_options().reuse_position_projections
    with attention.options(reuse_position_projections=False):
        assert not attention.current_options().reuse_position_projections
        with attention.options(cpu_kernel=False, piece_bytes={"cpu": 1}):
            inner = attention.current_options()
            assert (inner.reuse_position_projections, inner.cpu_kernel, dict(inner.piece_bytes)) == (False, False,
                                                                                                    {"cpu": 1})
        assert attention.current_options().cpu_kernel
        with pytest.raises(RuntimeError), attention.options(fused_cpu_bias=True):
            raise RuntimeError
        assert not attention.current_options().fused_cpu_bias
    assert attention.current_options() == attention.AttentionOptions()
    with pytest.raises(TypeError, match="unknown attention option piece_size"), attention.options(piece_size=1):
        pass


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


def test_v3_preset_runs_against_transformers_deberta_v2(tmp_path):
    """``--model v3-tiny``: transformers' DebertaV2Model gets the same weights and gives the same outputs."""
    out = tmp_path / "bench.json"
    status = bench.main(["--model", "v3-tiny", "--dtype", "fp32", "--forward", "2x40", "--train", "2x16",
                         "--memory", "", "--repeats", "2", "--warmup", "0", "--threads", "1", "--quiet",
                         "--json", str(out)])
    assert status == 0
    data = json.loads(out.read_text())
    assert data["model_config"]["model_type"] == "deberta-v2" and not data["failures"]
    assert {("forward 2x40", "deberta"), ("train 2x16", "bert")} <= {(r["case"], r["model"]) for r in data["results"]}

    config = deberta.ModelConfig.preset("v3-tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    models = bench.build_models(config, ["deberta", "bert"], train=False, device=torch.device("cpu"), seed=0)
    assert type(models["deberta"]).__name__ == "DebertaV2Model"
    batch = bench.make_batch(bench.Shape(2, 40), config.vocab_size, torch.device("cpu"), seed=0)
    with torch.no_grad():
        ours = models["ours"](batch["ids"], batch["mask"])[-1]
        theirs = models["deberta"](input_ids=batch["ids"], attention_mask=batch["mask"]).last_hidden_state
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_outside_references_are_timed_with_our_weights_or_reported(tmp_path, monkeypatch):
    """--compare flashdeberta,disentangled-flash (v2/v3): disentangled-flash's encoder in transformers' DebertaV2,
    on the CPU its own PyTorch path, gets our weights and gives our outputs; one that cannot run is a failure
    of its cases, in one line, and the rest is timed."""
    pytest.importorskip("disentangled_flash")
    monkeypatch.setitem(bench.OUTSIDE_REFERENCES, "flashdeberta", "flashdeberta_not_here")  # whatever is installed
    out = tmp_path / "bench.json"
    status = bench.main(["--model", "v3-tiny", "--dtype", "fp32", "--forward", "2x24", "--train", "2x16",
                         "--memory", "2x16", "--repeats", "2", "--warmup", "0", "--threads", "1", "--quiet",
                         "--compare", "deberta,flashdeberta,disentangled-flash", "--json", str(out)])
    assert status == 0
    data = json.loads(out.read_text())
    timed = {(r["case"], r["model"]) for r in data["results"]}
    assert {("forward 2x24", "disentangled-flash"), ("train 2x16", "disentangled-flash")} <= timed
    assert ("forward 2x24", "ours", "disentangled-flash") in {(r["case"], r["model"], r["baseline"])
                                                              for r in data["ratios"]}
    assert {(f["case"], f["model"]) for f in data["failures"]} == {("forward 2x24", "flashdeberta"),
                                                                    ("train 2x16", "flashdeberta")}
    assert all("flashdeberta_not_here is not installed" in f["error"] and 'deberta[flash]' in f["error"]
               and "\n" not in f["error"] for f in data["failures"])
    assert set(data["memory"]["train 2x16 fp32"]) == {"ours", "deberta"}  # outside references are timed only

    import disentangled_flash

    config = deberta.ModelConfig.preset("v3-tiny", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    ours = bench.build_models(config, [], train=False, device=torch.device("cpu"), seed=0)["ours"]
    theirs = bench.build_outside_reference("disentangled-flash", config, ours.state_dict(), train=False,
                                           device=torch.device("cpu"), length=24)
    assert isinstance(theirs.encoder, disentangled_flash.DebertaV2OptimizedEncoder)
    batch = bench.make_batch(bench.Shape(2, 24), config.vocab_size, torch.device("cpu"), seed=0)
    with torch.inference_mode():
        expected = ours(batch["ids"], batch["mask"])[-1]
        got = theirs(input_ids=batch["ids"], attention_mask=batch["mask"]).last_hidden_state
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
