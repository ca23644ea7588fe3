"""Measurements of the pre-training code on this machine (numbers for the README; not a test).

    python experiments/language_model/measure.py squad [--steps 400]      # tiny MLM / RTD on real text
    python experiments/language_model/measure.py memory [--large_mb 500]  # peak RSS and tokens/s, 5 MB vs large

``squad``: the contexts of the SQuAD samples (``../shared/squad``, one document per paragraph), a
vocabulary built from them, tiny models; reports the generator's masked-token accuracy against the
unigram baseline (always the most frequent token) and the discriminator's accuracy against calling every
token original. ``memory``: a generated corpus (random words, paragraphs as documents) of 5 MB and of
``--large_mb``, each prepared and trained on in a process of its own; reports peak RSS and tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def squad_text(target: Path) -> Path:
    paragraphs = []
    for name in ("train-v1.1-sample.json", "train-v2.0-sample.json", "dev-v1.1-sample.json"):
        data = json.loads((SHARED / "squad" / name).read_text(encoding="utf-8"))
        paragraphs += [p["context"] for article in data["data"] for p in article["paragraphs"]]
    target.write_text("\n\n".join(dict.fromkeys(paragraphs)) + "\n", encoding="utf-8")
    return target


def run_pretrain(args: list[str]) -> list[dict]:
    from DeBERTa.apps import pretrain

    if pretrain.main(args) != 0:
        raise SystemExit(f"pre-training failed: {args}")
    out = Path(args[args.index("--output_dir") + 1])
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def measure_squad(steps: int, max_seq_len: int, batch: int, width: int, layers: int, lr: float) -> None:
    from DeBERTa import deberta
    from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files
    from DeBERTa.training.data.corpus import Corpus, CorpusWindows, prepare_corpus

    work = Path(tempfile.mkdtemp(prefix="squad-lm-"))
    text = squad_text(work / "squad.txt")
    documents = text.read_text(encoding="utf-8").split("\n\n")
    vocab = build_vocab(documents, *gpt2_bpe_files(), include_unseen=False).save(work / "bpe_encoder.bin")
    tokenizer = GPT2Tokenizer(vocab)
    corpus = prepare_corpus([text], tokenizer, work / "corpus", progress=False)
    windows = CorpusWindows(Corpus.open(corpus), max_seq_len, tokenizer.cls_token_id, tokenizer.sep_token_id)
    counts = Counter(i for w in range(len(windows)) for i in windows[w]["input_ids"][1:-1].tolist())
    unigram = counts.most_common(1)[0][1] / sum(counts.values())
    print(f"corpus: {len(documents)} paragraphs, {sum(counts.values())} tokens, "
          f"{len(windows)} windows of {max_seq_len}, vocabulary {tokenizer.vocab_size}; "
          f"unigram baseline (most frequent token) {unigram:.3f}")
    config = deberta.ModelConfig.preset("tiny", hidden_size=width, num_hidden_layers=layers,
                                        intermediate_size=4 * width, num_attention_heads=max(1, width // 32),
                                        vocab_size=tokenizer.vocab_size)
    config.save(work / "model.json", layout="hf")
    print(f"model: {layers} layers x {width} (generator of RTD: {max(1, layers // 2)} layers)")
    common = ["--corpus", str(corpus), "--model_config", str(work / "model.json"), "--max_seq_len", str(max_seq_len),
              "--train_batch_size", str(batch),
              "--max_steps", str(steps), "--warmup", str(steps // 10), "--log_interval", str(max(1, steps // 10)),
              "--dump_interval", str(steps), "--seed", "1"]
    started = time.perf_counter()
    mlm = run_pretrain([*common, "--objective", "mlm", "--learning_rate", str(lr), "--output_dir", str(work / "mlm")])
    mlm_time = time.perf_counter() - started
    started = time.perf_counter()
    rtd = run_pretrain([*common, "--objective", "rtd", "--learning_rate", str(lr), "--output_dir", str(work / "rtd")])
    rtd_time = time.perf_counter() - started
    print(f"MLM ({steps} updates of {batch} x {max_seq_len}, {mlm_time:.0f} s): masked accuracy "
          + " ".join(f"{r['step']}:{r['masked_accuracy']:.3f}" for r in mlm))
    print(f"RTD ({steps} updates, {rtd_time:.0f} s): generator masked accuracy "
          + " ".join(f"{r['step']}:{r['masked_accuracy']:.3f}" for r in rtd))
    print("RTD discriminator accuracy / all-original baseline: "
          + " ".join(f"{r['step']}:{r['rtd_accuracy']:.3f}/{1 - r['replaced_share']:.3f}" for r in rtd))


CHILD = """
import json, resource, sys, time
from pathlib import Path
from DeBERTa.apps import pretrain
from DeBERTa.deberta.tokenizer import GPT2Tokenizer
from DeBERTa.training.data.corpus import prepare_corpus
stage, text, work, steps = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
started = time.perf_counter()
if stage == "prepare":
    folder = prepare_corpus([text], GPT2Tokenizer(work / "vocab"), work / "corpus", progress=False)
    tokens = json.loads((folder / "index.json").read_text())["tokens"]
else:
    args = ["--corpus", str(work / "corpus"), "--model_config", "tiny", "--max_seq_len", "128",
            "--train_batch_size", "32", "--max_steps", str(steps), "--warmup", "1", "--log_interval", str(steps),
            "--dump_interval", str(steps), "--output_dir", str(work / "run")]
    assert pretrain.main(args) == 0
    corpus = json.loads((work / "run" / "run.json").read_text())["corpus"]
    per_window = (corpus["tokens"] + 2 * corpus["windows"]) / corpus["windows"]  # ids, not padding
    tokens = round(steps * 32 * per_window)
seconds = time.perf_counter() - started
rate = tokens / seconds
if stage == "train":  # the loop's own rate (startup, corpus opening and export left out)
    record = json.loads((work / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    rate = record["examples_per_s"] * per_window
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "tokens_per_s": rate, "tokens": tokens, "seconds": seconds}))
"""


# One compute thread and one malloc arena: without them the peak RSS of the same run varies by about 10%
# (each thread's arena grows with what it happened to allocate), which hides what the corpus size adds.
CHILD_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"}


def synthetic_corpus(path: Path, megabytes: float, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = [w for w in (SHARED / "squad" / "train-v1.1-sample.json").read_text(encoding="utf-8").split()
             if w.isalpha()][:20000]
    target = int(megabytes * 2**20)
    with path.open("w", encoding="utf-8") as f:
        written = 0
        while written < target:
            paragraph = " ".join(rng.choices(words, k=rng.randint(40, 400))) + "\n\n"
            f.write(paragraph)
            written += len(paragraph)
    return path


def measure_memory(small_mb: float, large_mb: float, steps: int, repeats: int, keep: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="corpus-memory-"))
    try:
        _measure_memory(work, small_mb, large_mb, steps, repeats)
    finally:
        if keep:
            print(f"kept {work}")
        else:  # the generated corpora and their shards take about twice the corpus size
            shutil.rmtree(work, ignore_errors=True)


def _measure_memory(work: Path, small_mb: float, large_mb: float, steps: int, repeats: int) -> None:
    from DeBERTa.deberta.tokenizer import GPT2Tokenizer, build_vocab, gpt2_bpe_files

    sample = synthetic_corpus(work / "sample.txt", 1)  # the vocabulary of the words the corpora use
    vocabulary = build_vocab([sample.read_text(encoding="utf-8")], *gpt2_bpe_files(), include_unseen=False)
    GPT2Tokenizer(vocabulary.save(work / "bpe_encoder.bin")).save_pretrained(work / "vocab")
    for megabytes in (small_mb, large_mb):
        folder = work / f"{megabytes:g}mb"
        folder.mkdir()
        (folder / "vocab").symlink_to(work / "vocab")
        started = time.perf_counter()
        text = synthetic_corpus(folder / "corpus.txt", megabytes)
        print(f"{megabytes:g} MB: generated in {time.perf_counter() - started:.0f} s", flush=True)
        for stage in ("prepare", *["train"] * repeats):
            if stage == "train":
                shutil.rmtree(folder / "run", ignore_errors=True)
            result = subprocess.run([sys.executable, "-c", CHILD, stage, str(text), str(folder), str(steps)],
                                    capture_output=True, text=True, env=CHILD_ENV)
            if result.returncode != 0:
                raise SystemExit(f"{megabytes:g} MB {stage} failed:\n{result.stderr[-3000:]}")
            numbers = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"{megabytes:g} MB {stage}: peak RSS {numbers['peak_rss_mb']:.0f} MB, "
                  f"{numbers['tokens_per_s']:.0f} tokens/s ({numbers['tokens']} tokens in {numbers['seconds']:.0f} s)",
                  flush=True)
        (folder / "corpus.txt").unlink()  # the shards are what training reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    squad = sub.add_parser("squad")
    squad.add_argument("--steps", type=int, default=400)
    squad.add_argument("--max_seq_len", type=int, default=128)
    squad.add_argument("--batch", type=int, default=32)
    squad.add_argument("--width", type=int, default=32)
    squad.add_argument("--layers", type=int, default=2)
    squad.add_argument("--learning_rate", type=float, default=2e-3)
    memory = sub.add_parser("memory")
    memory.add_argument("--small_mb", type=float, default=5)
    memory.add_argument("--large_mb", type=float, default=500)
    memory.add_argument("--steps", type=int, default=20)
    memory.add_argument("--repeats", type=int, default=2, help="training runs per corpus (its peak RSS is noisy)")
    memory.add_argument("--keep", action="store_true", help="keep the generated corpora (default: deleted)")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if args.what == "squad":
        measure_squad(args.steps, args.max_seq_len, args.batch, args.width, args.layers, args.learning_rate)
    else:
        measure_memory(args.small_mb, args.large_mb, args.steps, args.repeats, args.keep)


if __name__ == "__main__":
    main()
