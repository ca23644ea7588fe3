"""The one training engine every app uses (no command line here): ``apps/`` → ``training/`` → ``deberta/``.

* :mod:`.engine` — the loop (DDP, AMP, accumulation, clipping, schedules, evaluation hooks, resume) and
  the interfaces a task kind or a pre-training objective implements (:class:`~.engine.TrainingJob`,
  :class:`~.engine.TaskKind`);
* :mod:`.checkpoints` — ``checkpoints/step-N`` written atomically, newest K + best, fallback to the newest
  intact one;
* :mod:`.records` — the run folder's ``config.yaml``, ``run.json``, ``metrics.jsonl``, TensorBoard;
* :mod:`.optim` — AdamW groups and warm-up schedules; :mod:`.rng` — seeds and RNG states;
  :mod:`.distributed` — torchrun processes; :mod:`.models` — ``--model_config`` presets and files;
* :mod:`.data` — samplers (the same global batches on any number of ranks) and corpus shards;
* :mod:`.pretraining` — masking, masked LM and replaced token detection with embedding sharing.
"""
