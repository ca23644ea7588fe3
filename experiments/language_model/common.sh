# shellcheck shell=bash
# Shared by mlm.sh and rtd.sh: pick the recipe of a model size, then start the pre-training app under
# torchrun over the visible GPUs (and nodes), or as one process on the CPU.
#
# A script sets OBJECTIVE (mlm|rtd), EXTRA (options of the objective) and RECIPES, one line per size:
#   "name model_config learning_rate global_batch warmup max_steps"
# Environment: CORPUS (a folder made by prepare_wikitext.sh or prepare_corpus; default $CACHE/wikitext-103),
# CACHE (default /tmp/DeBERTa/language_model), OUTPUT (default $CACHE/runs/<objective>-<name>),
# NNODES/NODE_RANK/MASTER_ADDR/MASTER_PORT for several nodes, ACCUMULATE (micro-steps per update, default 1).

lm_die() { echo "$(basename "$0"): error: $*" >&2; exit 2; }

lm_usage() {
  echo "Usage: ./$(basename "$0") [--dry-run] SIZE [pretrain options ...]"
  echo
  echo "Pre-train DeBERTa with --objective $OBJECTIVE and the original recipe (max_seq_len 512, position_buckets"
  echo "256 in the v3 presets). Extra options go to python -m DeBERTa.apps.pretrain and override the recipe."
  echo
  printf '  %-8s %-12s %-14s %-6s %-7s %s\n' size config learning_rate batch warmup max_steps
  local line
  for line in "${RECIPES[@]}"; do
    # shellcheck disable=SC2086  # the recipe line is split into its columns on purpose
    printf '  %-8s %-12s %-14s %-6s %-7s %s\n' $line
  done
}

lm_main() {
  local dry_run=0
  if [[ ${1:-} == --dry-run ]]; then dry_run=1; shift; fi
  if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then lm_usage; [[ $# -ge 1 ]] && exit 0; exit 2; fi
  local size=$1; shift
  local line name config lr batch warmup steps found=0
  for line in "${RECIPES[@]}"; do
    read -r name config lr batch warmup steps <<<"$line"
    if [[ $name == "$size" ]]; then found=1; break; fi
  done
  [[ $found == 1 ]] || lm_die "unknown size '$size' (see --help)"

  local cache=${CACHE:-/tmp/DeBERTa/language_model}
  local corpus=${CORPUS:-$cache/wikitext-103}
  local output=${OUTPUT:-$cache/runs/$OBJECTIVE-$name}
  local gpus=0
  if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | wc -l); fi
  local launcher=(python -m DeBERTa.apps.pretrain)
  local precision=()
  if [[ $gpus -gt 0 ]]; then
    launcher=(torchrun --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$gpus"
              --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}"
              -m DeBERTa.apps.pretrain)
    precision=(--fp16)
  fi
  local command=("${launcher[@]}" --objective "$OBJECTIVE" --corpus "$corpus" --model_config "$config"
                 --output_dir "$output" --max_seq_len 512 --train_batch_size "$batch"
                 --accumulative_update "${ACCUMULATE:-1}" --learning_rate "$lr" --warmup "$warmup"
                 --max_steps "$steps" --lr_schedule warmup_linear --weight_decay 0.01 --adam_beta2 0.999
                 --dump_interval 10000 --keep_checkpoints 2 --log_interval 100 "${precision[@]}" "${EXTRA[@]}" "$@")
  if [[ $dry_run == 1 ]]; then printf '%q ' "${command[@]}"; echo; exit 0; fi
  [[ -f $corpus/index.json ]] || lm_die "no prepared corpus in $corpus: run ./prepare_wikitext.sh first (or set CORPUS)"
  exec "${command[@]}"
}
