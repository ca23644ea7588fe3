"""Fine-tune, evaluate and predict DeBERTa on GLUE, custom tasks, NER (CoNLL-2003), SQuAD 1.1/2.0, RACE and
SWAG: ``python -m DeBERTa.apps.train``.

One process by default; ``torchrun --nproc_per_node N -m DeBERTa.apps.train ...`` runs N processes
of DistributedDataParallel (NCCL on GPUs, gloo on CPUs; multi-node with ``--nnodes``,
``--node_rank`` and ``--rdzv_endpoint``). ``--help`` lists the options; the original DeBERTa
scripts' spellings (``--max_seq_length``, ``--bert_config``, ``--fp16 True``, ...) work unchanged::

    python -m DeBERTa.apps.train --task_name RTE --do_train --do_eval --data_dir glue/RTE \\
        --init_model base_mnli --output_dir runs/rte --num_train_epochs 6 --warmup 100 \\
        --learning_rate 2e-5 --train_batch_size 32 --cls_drop_out 0.2 --max_seq_len 320

A bad input (unknown task, missing file, malformed row, ...) prints one ``error:`` line and exits 2
before anything is written.
"""

from __future__ import annotations

import sys

from torch.distributed.elastic.multiprocessing.errors import record

from . import cli
from .distributed import DistEnv, shutdown
from .options import parse_options
from .trainer import Trainer


def configure_logging(env: DistEnv) -> None:
    """The package's log on stderr for this process of the job (see :func:`DeBERTa.apps.cli.configure_logging`)."""
    cli.configure_logging(env.rank, env.world_size)


@record  # under torchrun, an unexpected exception is reported as this rank's root cause
def main(argv: list[str] | None = None) -> int:
    """Run the app with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    env = DistEnv()

    def body(args: list[str]) -> None:
        nonlocal env
        env = DistEnv.from_environ()
        configure_logging(env)
        Trainer(parse_options(args), env, args).run()

    status = cli.run(body, argv, where=lambda: f"rank {env.rank}: " if env.is_distributed else "")
    if status == 0:
        shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
