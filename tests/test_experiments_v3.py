"""experiments/glue: the DeBERTa v2/v3 recipes of the original repository, as the scripts write them.

The table is typed in here from the original scripts, not read from ours.
"""

from __future__ import annotations

import shutil

import pytest
from test_experiments import dry_run

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the experiment scripts are bash")

# script → model → (max_seq_len, epochs, learning_rate, batch, warmup, cls_drop_out)
V3_RECIPES = {
    "mnli": {"v3-xsmall": (256, 3, 4.5e-5, 64, 1000, 0.1), "v3-small": (256, 3, 4.5e-5, 64, 1500, 0.2),
             "v3-base": (256, 3, 1.5e-5, 64, 1000, 0.1), "v3-large": (256, 2, 7e-6, 64, 500, 0.3),
             "v2-xlarge": (256, 3, 4e-6, 64, 1000, 0.25), "v2-xxlarge": (256, 3, 3e-6, 64, 1000, 0.3)},
    "qqp": {"v3-large": (320, 6, 1e-5, 64, 1000, 0.2), "v2-xlarge": (320, 10, 4e-6, 64, 1000, 0.2),
            "v2-xxlarge": (320, 10, 3e-6, 64, 1000, 0.2)},
    "qnli": {"v3-large": (512, 6, 7e-6, 64, 200, 0.2), "v2-xlarge": (512, 4, 4e-6, 64, 500, 0.2),
             "v2-xxlarge": (512, 4, 3e-6, 64, 500, 0.2)},
    "sst2": {"v3-large": (128, 8, 6e-6, 32, 500, 0.1), "v2-xlarge": (128, 4, 4e-6, 32, 500, 0.2),
             "v2-xxlarge": (128, 4, 3e-6, 32, 500, 0.2)},
    "cola": {"v3-large": (64, 10, 5.5e-6, 32, 50, 0.1), "v2-xlarge": (64, 8, 3e-6, 32, 100, 0.2),
             "v2-xxlarge": (64, 10, 2.5e-6, 32, 100, 0.2)},
    "rte": {"v2-xlarge": (320, 6, 4e-6, 48, 50, 0.2), "v2-xxlarge": (320, 6, 3e-6, 48, 50, 0.2)},
    "mrpc": {"v2-xlarge": (128, 6, 3.5e-6, 32, 50, 0.2), "v2-xxlarge": (128, 6, 2e-6, 32, 50, 0.2)},
    "stsb": {"v2-xlarge": (128, 4, 4e-6, 32, 100, 0.2), "v2-xxlarge": (128, 4, 3e-6, 32, 100, 0.2)},
}
FROM_MNLI = {"rte", "mrpc", "stsb"}


@pytest.mark.parametrize("script,model", [(s, m) for s, table in V3_RECIPES.items() for m in table])
def test_v2_v3_recipes(script: str, model: str) -> None:
    _, config, _ = dry_run(script, model, env={"NUM_GPUS": "8"})
    max_seq_len, epochs, lr, batch, warmup, cls_drop_out = V3_RECIPES[script][model]
    assert (config["max_seq_len"], config["num_train_epochs"], config["learning_rate"], config["train_batch_size"],
            config["warmup"], config["cls_drop_out"]) == (max_seq_len, epochs, lr, batch, warmup, cls_drop_out)
    assert config["init_model"] == (f"{model}_mnli" if script in FROM_MNLI else model)


def test_the_model_names_are_hub_names() -> None:
    from DeBERTa.deberta import hub

    for model in {m for table in V3_RECIPES.values() for m in table}:
        assert hub.canonical_name(model) is not None, model
