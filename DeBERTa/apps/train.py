"""Fine-tune, evaluate and predict DeBERTa on GLUE and custom tasks: ``python -m DeBERTa.apps.train``.

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

import logging
import sys

from torch.distributed.elastic.multiprocessing.errors import record

from DeBERTa.deberta import DeBERTaError

from .distributed import DistEnv, shutdown
from .options import parse_options
from .trainer import Trainer

_log_handler: logging.Handler | None = None


def configure_logging(env: DistEnv) -> None:
    """The package's log on stderr: INFO on rank 0, warnings only elsewhere (N processes, one log).

    The handler sits on the ``DeBERTa`` logger, not the root, so that an embedding program's logging
    setup stays as it is; records still propagate to the root (the run folder's train.log is there).
    """
    global _log_handler
    package = logging.getLogger("DeBERTa")
    if _log_handler is not None:  # main() called again in the same process
        package.removeHandler(_log_handler)
    prefix = f"[rank {env.rank}] " if env.is_distributed else ""
    _log_handler = logging.StreamHandler()
    _log_handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
                                                datefmt="%H:%M:%S"))
    package.addHandler(_log_handler)
    package.setLevel(logging.INFO if env.is_main else logging.WARNING)


@record  # under torchrun, an unexpected exception is reported as this rank's root cause
def main(argv: list[str] | None = None) -> int:
    """Run the app with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    env = DistEnv()
    try:
        env = DistEnv.from_environ()
        configure_logging(env)
        Trainer(parse_options(argv), env, argv).run()
    except DeBERTaError as err:
        where = f"rank {env.rank}: " if env.is_distributed else ""
        print(f"error: {where}{err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
