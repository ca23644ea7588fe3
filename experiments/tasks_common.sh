# shellcheck shell=bash
# Shared by the scripts of the tasks beyond GLUE (ner/, squad/, race/, swag/): each sets its task, its data
# folder and its table of recipes, then calls task_main "$@". Like glue/common.sh (whose helpers it uses),
# it writes the recipe as recipe.yaml into the run folder and starts the training app on it: torchrun over
# the visible GPUs (and nodes), or one process on the CPU. The environment settings are the same.
#
# A task script sets:
#   TASK           the app's task name (NER, SQuAD, SQuAD2, RACE, SWAG); also its folder under $DATA_DIR
#   RECIPES        one line per model: "model max_seq_len epochs learning_rate batch warmup cls_drop_out"
#   EXTRA_OPTIONS  (optional) "key: value" YAML lines every model's recipe adds (doc_stride, ...)
#   INIT_SUFFIX    (optional) appended to the model name to make the starting model (RACE: _mnli)
#   RECIPE_NOTE    (optional) where the recipe comes from, shown by --help
#   DATA_HINT      how to get the data (shown when the data folder is missing)

# shellcheck source-path=SCRIPTDIR source=glue/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/glue/common.sh"

task_usage() {
  local script
  script=$(basename "$0")
  cat <<USAGE
Usage: ./$script [--dry-run] MODEL [trainer options ...]

Fine-tune DeBERTa on $TASK: write the recipe as recipe.yaml into the run folder and run
'python -m DeBERTa.apps.train --config recipe.yaml' under torchrun, one process per visible GPU (fp16),
or as one process on the CPU when there is no GPU.

MODEL: $(task_model_names)
USAGE
  if [[ -n ${INIT_SUFFIX:-} ]]; then
    echo "  The recipe starts from that model fine-tuned on MNLI (MODEL$INIT_SUFFIX; INIT_MODEL changes it)."
  fi
  if [[ -n ${RECIPE_NOTE:-} ]]; then printf '\n%s\n' "$RECIPE_NOTE"; fi
  echo
  echo "Recipe:"
  printf '  %-7s %-12s %-7s %-14s %-6s %-7s %s\n' model max_seq_len epochs learning_rate batch warmup cls_drop_out
  local line
  for line in "${RECIPES[@]}"; do
    # shellcheck disable=SC2086  # the recipe line is split into its columns on purpose
    printf '  %-7s %-12s %-7s %-14s %-6s %-7s %s\n' $line
  done
  if [[ -n ${EXTRA_OPTIONS:-} ]]; then
    echo "  and for every model:"
    printf '%s\n' "$EXTRA_OPTIONS" | sed 's/^/    /'
  fi
  cat <<USAGE
(warmup: updates when 1 or more, else a proportion of all updates)

Options:
  --dry-run   print the recipe and the command; write and run nothing
  -h, --help  show this help
Trainer options after MODEL are passed on and override the recipe (e.g. --num_train_epochs 1).

Environment:
  DATA_DIR      data folder: reads \$DATA_DIR/$TASK (default: /data, the container's data volume)
  OUTPUT_DIR    run folder (default: \$DATA_DIR/runs/$TASK-MODEL-seedSEED)
  SEED          random seed (default: 1234)
  NUM_GPUS      processes per node (default: the visible GPUs, CUDA_VISIBLE_DEVICES respected; 0: CPU)
  FP16          1 or 0 (default: 1 with GPUs, 0 on the CPU)
  INIT_MODEL    starting model instead of the recipe's (a name, a pre-trained folder or a checkpoint)
  DUMP_INTERVAL updates between evaluations (default: the app's; it also evaluates after every epoch)
  NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (default 29500) or RDZV_ENDPOINT (HOST:PORT), and
  optionally RDZV_BACKEND, RDZV_ID
                multi-node training: run the same command on every node with its own NODE_RANK
  PYTHON, TORCHRUN   the interpreter and launcher (default: python3, torchrun)
USAGE
}

task_model_names() {
  local line names=()
  for line in "${RECIPES[@]}"; do names+=("${line%% *}"); done
  echo "${names[*]}"
}

task_main() {
  local dry_run=0
  while (($#)); do
    case "$1" in
      --dry-run) dry_run=1; shift ;;
      -h|--help) task_usage; exit 0 ;;
      -*) glue_die "unknown option '$1' before MODEL (see --help)" ;;
      *) break ;;
    esac
  done
  (($#)) || { task_usage >&2; exit 2; }
  local model=$1
  shift
  local extra_args=("$@")

  local line recipe=""
  for line in "${RECIPES[@]}"; do
    [[ ${line%% *} == "$model" ]] && recipe=$line
  done
  [[ -n $recipe ]] || glue_die "unknown model '$model' for $TASK; choose one of: $(task_model_names)"
  local max_seq_len epochs learning_rate batch warmup cls_drop_out
  read -r _ max_seq_len epochs learning_rate batch warmup cls_drop_out <<<"$recipe"

  local seed=${SEED:-1234}
  glue_is_uint "$seed" || glue_die "SEED must be a non-negative integer (got '$seed')"
  local data_root=${DATA_DIR:-/data}
  glue_run_recipe "$dry_run" "$model" "$model" "$seed" "$data_root/$TASK" \
    "${OUTPUT_DIR:-$data_root/runs/$TASK-$model-seed$seed}" "${INIT_MODEL:-$model${INIT_SUFFIX:-}}" "INIT_MODEL" \
    "the recipe of $(basename "$0")" "${DATA_HINT:-see the README} (or set DATA_DIR)" \
    "$max_seq_len" "$epochs" "$learning_rate" "$batch" "$warmup" "$cls_drop_out" "${extra_args[@]}"
}

# ----- downloads ------------------------------------------------------------------------------------------
# task_fetch URL FILE CHECK...: download URL (curl, else Python) to FILE.partial, run the command CHECK with
# FILE.partial appended (it prints the reason and fails for a wrong file), then rename it to FILE. An
# existing FILE that passes CHECK is kept: on an offline machine, copy the files in by hand.
task_fetch() {
  local url=$1 file=$2
  shift 2
  if [[ -f $file ]] && "$@" "$file" >/dev/null 2>&1; then
    echo "$(basename "$0"): $file is already there"
    return 0
  fi
  echo "$(basename "$0"): downloading $url"
  local err
  if command -v curl >/dev/null 2>&1; then
    err=$(curl --fail --location --silent --show-error --connect-timeout 20 --retry 2 \
      --output "$file.partial" "$url" 2>&1) || {
      rm -f "$file.partial"
      glue_die "cannot download $url (${err##*$'\n'}); copy $(basename "$file") into $(dirname "$file")/ by hand and run this again"
    }
  else
    err=$(python3 -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=20) as response, open(sys.argv[2], "wb") as out:
    shutil.copyfileobj(response, out)' "$url" "$file.partial" 2>&1) || {
      rm -f "$file.partial"
      glue_die "cannot download $url (${err##*$'\n'}); copy $(basename "$file") into $(dirname "$file")/ by hand and run this again"
    }
  fi
  local reason
  reason=$("$@" "$file.partial" 2>&1) || {
    rm -f "$file.partial"
    glue_die "$url: ${reason##*$'\n'}; not using it"
  }
  mv "$file.partial" "$file"
}
