"""The training app's options: the original scripts' spellings, YAML --config, checks, --help."""

from __future__ import annotations

import dataclasses

import pytest

from DeBERTa.apps.options import (
    FIELDS,
    TRAINING_OPTIONS,
    OptionsError,
    TrainOptions,
    batch_split,
    build_parser,
    parse_options,
)

REQUIRED = ["--task_name", "RTE", "--data_dir", "data", "--output_dir", "out", "--init_model", "base"]


def test_original_rte_command_parses_unchanged() -> None:
    # The published RTE recipe plus what the original's experiments/utils/train.sh adds to every command.
    argv = ("--task_name RTE --do_train --data_dir /tmp/glue/RTE --init_model base_mnli --output_dir /tmp/out "
            "--bert_config config.json --max_seq_length 320 --eval_batch_size 128 --predict_batch_size 128 "
            "--scale_steps 250 --loss_scale 16384 --tag deberta_base --lr_schedule warmup_linear "
            "--accumulative_update 1 --dump_interval 5000 --with_radam False --cls_drop_out 0.2 "
            "--num_train_epochs 6 --warmup 100 --learning_rate 2e-5 --train_batch_size 32 --fp16 True").split()
    opts = parse_options(argv)
    assert opts.model_config == "config.json"  # --bert_config
    assert opts.max_seq_len == 320  # --max_seq_length
    assert opts.fp16 is True and opts.with_radam is False
    assert opts.warmup == 100 and opts.learning_rate == 2e-5 and opts.loss_scale == 16384
    assert opts.cls_drop_out == 0.2 and opts.tag == "deberta_base" and opts.do_train and not opts.do_eval


def test_abbreviations_of_the_original_scripts() -> None:
    # mnli_base.sh passes "--dump 5000 --cls_drop 0.1"; argparse's unique prefixes accept them.
    opts = parse_options([*REQUIRED, "--do_train", "--dump", "5000", "--cls_drop", "0.1"])
    assert opts.dump_interval == 5000 and opts.cls_drop_out == 0.1


def test_flags_and_resume_forms() -> None:
    assert parse_options([*REQUIRED, "--do_eval"]).resume == "auto"
    assert parse_options([*REQUIRED, "--do_eval", "--resume"]).resume == "auto"
    assert parse_options([*REQUIRED, "--do_eval", "--resume", "never"]).resume == "never"
    opts = parse_options([*REQUIRED, "--do_eval", "--resume", "out/checkpoints/step-8"])
    assert opts.resume_dir == "out/checkpoints/step-8"
    assert parse_options([*REQUIRED, "--do_eval", "--bf16", "--pre_trained", "large"]).init_model == "large"
    assert parse_options([*REQUIRED, "--do_eval", "--fp16", "false"]).fp16 is False


def test_yaml_config_then_command_line(tmp_path) -> None:
    config = tmp_path / "run.yaml"
    # 2e-5 without a dot is a *string* in YAML 1.1; it still converts. Aliases work as keys.
    config.write_text("task_name: MNLI\nlearning_rate: 2e-5\nmax_seq_length: 256\ndo_train: true\n"
                      "data_dir: d\noutput_dir: o\nmodel_config: tiny\nwarmup: 1000\n")
    opts = parse_options(["--config", str(config), "--learning_rate", "3e-5"])
    assert opts.task_name == "MNLI" and opts.max_seq_len == 256 and opts.warmup == 1000
    assert opts.learning_rate == 3e-5  # the command line wins
    assert opts.do_train and opts.model_config == "tiny"


def test_recorded_config_reproduces_the_options(tmp_path) -> None:
    import yaml

    opts = parse_options([*REQUIRED, "--do_train", "--seed", "7", "--fp16"])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(opts.to_record()))
    assert parse_options(["--config", str(config)]) == dataclasses.replace(opts, config=str(config))


@pytest.mark.parametrize("argv, message", [
    (["--do_train"], "--task_name is required"),
    (REQUIRED, "nothing to do"),
    ([*REQUIRED, "--do_train", "--fp16", "--bf16"], "exclude each other"),
    ([*REQUIRED, "--do_train", "--with_radam", "True"], "RAdam"),
    ([*REQUIRED, "--do_train", "--learning_rate", "fast"], "not a valid float"),
    ([*REQUIRED, "--do_train", "--fp16", "maybe"], "not true or false"),
    ([*REQUIRED, "--do_train", "--train_batch_size", "0"], "at least 1"),
    ([*REQUIRED, "--do_train", "--lr_schedule", "step"], "not one of"),
    ([*REQUIRED, "--do_train", "--warmup", "-1"], "must not be negative"),
    ([*REQUIRED, "--do_train", "--no_such_option", "1"], "unrecognized arguments"),
    (["--task_name", "RTE", "--data_dir", "d", "--output_dir", "o", "--do_train"], "--init_model"),
])
def test_bad_options_are_one_line_errors(argv, message) -> None:
    with pytest.raises(OptionsError, match=message) as err:
        parse_options(argv)
    assert "\n" not in str(err.value)


def test_bad_yaml_config(tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("task_name: RTE\nlearning_rat: 1e-5\n")
    with pytest.raises(OptionsError, match="unknown option.*learning_rat"):
        parse_options(["--config", str(config)])
    config.write_text("- a list\n")
    with pytest.raises(OptionsError, match="mapping"):
        parse_options(["--config", str(config)])
    with pytest.raises(OptionsError, match="no such file"):
        parse_options(["--config", str(tmp_path / "missing.yaml")])


def test_global_batch_split_over_ranks_and_accumulation() -> None:
    assert batch_split(32, 1, 2) == 16
    assert batch_split(32, 4, 2) == 4
    with pytest.raises(OptionsError, match=r"--train_batch_size 32 does not divide over 3 process\(es\) x "
                                           r"--accumulative_update 2; use a multiple of 6"):
        batch_split(32, 3, 2)
    with pytest.raises(OptionsError, match="must be at least 1"):
        batch_split(8, 1, 0)


def test_training_record_names_one_file_one_way(tmp_path, monkeypatch) -> None:
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    here = TrainOptions(task_name="RTE", model_config="config.json", init_model="base").training_record()
    monkeypatch.chdir(tmp_path.parent)
    there = TrainOptions(task_name="RTE", model_config=f"{tmp_path.name}/config.json",
                         init_model="base").training_record()
    assert here == there and here["model_config"] == str(tmp_path / "config.json")
    assert here["init_model"] == "base"  # a model name, not a path: kept as given
    assert list(here) == list(TRAINING_OPTIONS)


def test_help_explains_every_option(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for name, spec in FIELDS.items():
        assert f"--{name}" in text
        assert len(spec.metadata["help"]) > 15, name
    assert "--max_seq_length" in text and "--bert_config" in text
