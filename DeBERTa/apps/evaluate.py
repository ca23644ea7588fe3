"""Score a prediction file the official way: ``python -m DeBERTa.apps.evaluate KIND GOLD PREDICTIONS``.

Prints one JSON object on one line: numbers unrounded on a 0–100 scale, the overall figures at the top
level, per-type or per-part figures nested. Kinds:

* ``squad``: GOLD a SQuAD JSON file (1.1 or 2.0, told by its content), PREDICTIONS ``{id: answer}``
  JSON (``predictions.json``); ``--na-prob FILE`` (2.0: ``null_odds.json`` or any id → no-answer
  probability) adds ``best_exact``, ``best_f1`` and their thresholds. The keys and numbers of the
  official ``evaluate-v1.1.py`` / ``evaluate-v2.0.py``, plus ``total``, ``missing`` and ``version``.
* ``conll``: GOLD a CoNLL file (tag last), PREDICTIONS the same tokens one per line with the predicted
  tag last (``word gold pred`` files qualify), blank lines between sentences: conlleval's precision,
  recall, F1, accuracy, and ``per_type``. IOB1 and IOB2 alike.
* ``race``: GOLD a RACE split folder (``dev/`` holding ``middle/`` and ``high/``), PREDICTIONS a TSV
  ``id<TAB>prediction`` (letters or indices): ``accuracy``, ``middle``, ``high``.
* ``swag``: GOLD a SWAG CSV file (``val.csv``), PREDICTIONS a TSV as for RACE (indices): ``accuracy``.

A question without a prediction counts as wrong (``missing`` says how many). Bad input prints one
``error:`` line and exits 2.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from DeBERTa.deberta import DeBERTaError
from DeBERTa.metrics.choice import choice_accuracy, race_accuracy
from DeBERTa.metrics.conll import conlleval
from DeBERTa.metrics.squad import squad_evaluate

from . import cli
from .tasks.choice import read_prediction_tsv, read_race, read_swag
from .tasks.kinds import DataError, read_json_file
from .tasks.ner import ConllSentence, read_conll

KINDS = ("squad", "conll", "race", "swag")


class EvaluationError(DeBERTaError):
    """Gold and predictions that cannot be scored together."""


def _parser() -> cli.OneLineErrorParser:
    parser = cli.OneLineErrorParser(
        prog="python -m DeBERTa.apps.evaluate",
        description="Score predictions against gold data with the official metric; prints one JSON object.",
    )
    parser.add_argument("kind", choices=KINDS, help="which official metric")
    parser.add_argument("gold", type=Path, help="gold data: SQuAD JSON, CoNLL file, RACE split folder, SWAG CSV")
    parser.add_argument("predictions", type=Path, help="predictions: SQuAD {id: text} JSON, CoNLL file, TSV")
    parser.add_argument("--na-prob", type=Path, metavar="FILE",
                        help="squad 2.0: JSON id → no-answer probability or score (null_odds.json)")
    parser.add_argument("--na-prob-thresh", type=float, default=1.0, metavar="X",
                        help="squad 2.0: a question whose no-answer value exceeds X is predicted unanswerable "
                             "(default 1.0, as the official script)")
    return parser


def _exists(path: Path, what: str, folder: bool = False) -> Path:
    if folder and not path.is_dir():
        raise DataError(f"{what} {path} is not a folder" if path.exists() else f"{what} {path} does not exist")
    if not folder and not path.is_file():
        raise DataError(f"{what} {path} is not a file" if path.exists() else f"{what} {path} does not exist")
    return path


def evaluate_squad(gold: Path, predictions: Path, na_prob: Path | None = None,
                   na_prob_thresh: float = 1.0) -> dict[str, Any]:
    dataset = read_json_file(_exists(gold, "gold file"))
    predicted = read_json_file(_exists(predictions, "predictions file"))
    if not isinstance(dataset, dict) or not isinstance(dataset.get("data"), list):
        raise DataError(f"{gold}: not a SQuAD file (expected a JSON object with a 'data' list)")
    if not isinstance(predicted, dict):
        raise DataError(f"{predictions}: expected a JSON object mapping question ids to answer texts")
    na_probs = None
    if na_prob is not None:
        na_probs = read_json_file(_exists(na_prob, "no-answer file"))
        bad = next((k for k, v in na_probs.items() if not isinstance(v, int | float) or isinstance(v, bool)
                    or not math.isfinite(v)), None) if isinstance(na_probs, dict) else ""
        if bad is not None:
            where = f" (at {bad!r})" if bad else ""
            raise DataError(f"{na_prob}: expected a JSON object mapping question ids to finite numbers{where}")
    try:
        return squad_evaluate(dataset, predicted, na_probs, na_prob_thresh)
    except ValueError as err:
        raise EvaluationError(f"{gold} / {predictions}: {err}") from None


def _aligned(gold_path: Path, gold: list[ConllSentence], pred_path: Path, predicted: list[ConllSentence]) -> None:
    for g, p in zip(gold, predicted, strict=False):
        for k, (gw, pw) in enumerate(zip(g.words, p.words, strict=False)):
            if gw != pw:
                raise EvaluationError(f"{pred_path}:{p.line + k}: token {pw!r} where {gold_path}:{g.line + k} "
                                      f"has {gw!r}")
        if len(g.words) != len(p.words):
            raise EvaluationError(f"{pred_path}:{p.line}: the sentence has {len(p.words)} tokens, the gold one at "
                                  f"{gold_path}:{g.line} has {len(g.words)}")
    if len(gold) != len(predicted):
        raise EvaluationError(f"{pred_path} has {len(predicted)} sentences, {gold_path} has {len(gold)}")


def evaluate_conll(gold: Path, predictions: Path) -> dict[str, Any]:
    gold_sentences = read_conll(_exists(gold, "gold file"))
    predicted = read_conll(_exists(predictions, "predictions file"))
    _aligned(gold, gold_sentences, predictions, predicted)
    return conlleval([s.tags for s in gold_sentences], [s.tags for s in predicted])


def evaluate_choice(kind: str, gold: Path, predictions: Path) -> dict[str, Any]:
    if kind == "race":
        examples = read_race(_exists(gold, "gold folder", folder=True))
    else:
        examples = read_swag(_exists(gold, "gold file"))
    unlabeled = next((e for e in examples if e.label is None), None)
    if unlabeled is not None:
        raise DataError(f"{gold}: question {unlabeled.guid} has no gold label (a test file cannot be scored)")
    predicted = read_prediction_tsv(_exists(predictions, "predictions file"), letters=kind == "race")
    ids = {e.guid for e in examples}
    if not ids & predicted.keys():
        first = next(iter(predicted))
        raise EvaluationError(f"{predictions}: no id matches {gold} (first id: {first!r}; gold ids look like "
                              f"{examples[0].guid!r})")
    chosen = [predicted.get(e.guid, -1) for e in examples]
    labels = [int(e.label) for e in examples if e.label is not None]
    result = (race_accuracy(chosen, labels, [e.part for e in examples]) if kind == "race"
              else choice_accuracy(chosen, labels))
    result["missing"] = sum(1 for e in examples if e.guid not in predicted)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with one ``error:`` line for bad input)."""
    def body(args_list: list[str]) -> int:
        args = _parser().parse_args(args_list)
        if args.na_prob is not None and args.kind != "squad":
            raise cli.UsageError("--na-prob applies to squad only (see --help)")
        if not math.isfinite(args.na_prob_thresh):
            raise cli.UsageError(f"--na-prob-thresh {args.na_prob_thresh} is not a finite number (see --help)")
        if args.kind == "squad":
            result = evaluate_squad(args.gold, args.predictions, args.na_prob, args.na_prob_thresh)
        elif args.kind == "conll":
            result = evaluate_conll(args.gold, args.predictions)
        else:
            result = evaluate_choice(args.kind, args.gold, args.predictions)
        print(json.dumps(result))
        return 0

    return cli.run(body, argv)


if __name__ == "__main__":
    sys.exit(main())
