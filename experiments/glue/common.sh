# shellcheck shell=bash
# Shared by the GLUE task scripts (mnli.sh, rte.sh, ...): each one sets its task and its table of
# recipes, then calls glue_main "$@". This file turns a recipe into a YAML config in the run folder and
# starts the training app on it: torchrun over the visible GPUs (and nodes), or one process on the CPU.
#
# A task script sets:
#   TASK           GLUE task name, which is also its folder under $DATA_DIR/glue_tasks (MNLI, SST-2, ...)
#   FROM_MNLI      1 when the recipe starts from the MNLI-fine-tuned model (RTE, MRPC, STS-B), else 0
#   DUMP_INTERVAL  updates between evaluations (optional; the app also evaluates after every epoch)
#   RECIPES        one line per model: "model max_seq_len epochs learning_rate batch warmup cls_drop_out"

glue_die() { echo "$(basename "$0"): error: $*" >&2; exit 2; }

glue_usage() {
  local script
  script=$(basename "$0")
  cat <<EOF
Usage: ./$script [--dry-run] MODEL [trainer options ...]

Fine-tune DeBERTa on $TASK with the published recipe: write it as recipe.yaml into the run folder and
run 'python -m DeBERTa.apps.train --config recipe.yaml' under torchrun, one process per visible GPU
(fp16), or as one process on the CPU when there is no GPU.

MODEL: $(glue_model_names)
EOF
  if [[ $FROM_MNLI == 1 ]]; then
    cat <<EOF
  The recipe starts from the MNLI-fine-tuned model: base_mnli or large_mnli (the official
  checkpoints), or your own MNLI run folder given as MNLI_MODEL.
EOF
  fi
  echo
  echo "Recipe:"
  printf '  %-7s %-12s %-7s %-14s %-6s %-7s %s\n' model max_seq_len epochs learning_rate batch warmup cls_drop_out
  local line
  for line in "${RECIPES[@]}"; do
    # shellcheck disable=SC2086  # the recipe line is split into its columns on purpose
    printf '  %-7s %-12s %-7s %-14s %-6s %-7s %s\n' $line
  done
  cat <<EOF

Options:
  --dry-run   print the recipe and the command; write and run nothing
  -h, --help  show this help
Trainer options after MODEL are passed on and override the recipe (e.g. --num_train_epochs 1).

Environment:
  DATA_DIR      data folder: reads \$DATA_DIR/glue_tasks/$TASK (default: /data, the container's data volume;
                ./download_data.sh fills it)
  OUTPUT_DIR    run folder (default: \$DATA_DIR/runs/$TASK-MODEL-seedSEED)
  SEED          random seed (default: 1234)
  NUM_GPUS      processes per node (default: the visible GPUs, CUDA_VISIBLE_DEVICES respected; 0: CPU)
  FP16          1 or 0 (default: 1 with GPUs, 0 on the CPU)
  INIT_MODEL    starting model instead of the recipe's (a name, a pre-trained folder or a checkpoint)
EOF
  if [[ $FROM_MNLI == 1 ]]; then
    echo "  MNLI_MODEL    your MNLI run folder to start from instead of base_mnli/large_mnli"
  fi
  cat <<EOF
  NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (default 29500) or RDZV_ENDPOINT (HOST:PORT), and
  optionally RDZV_BACKEND, RDZV_ID
                multi-node training: run the same command on every node with its own NODE_RANK
  PYTHON, TORCHRUN   the interpreter and launcher (default: python3, torchrun)
EOF
}

glue_model_names() {
  local line names=()
  for line in "${RECIPES[@]}"; do
    names+=("${line%% *}")
    [[ $FROM_MNLI == 1 ]] && names+=("${line%% *}_mnli")
  done
  echo "${names[*]}"
}

# A float PyYAML reads as a float: YAML 1.1 wants a dot in the mantissa (3e-5 would be a string).
glue_yaml_number() {
  if [[ $1 =~ ^([0-9]+)([eE][-+]?[0-9]+)$ ]]; then
    echo "${BASH_REMATCH[1]}.0${BASH_REMATCH[2]}"
  else
    echo "$1"
  fi
}

glue_yaml_string() { local s=${1//\'/\'\'}; echo "'$s'"; }

# A value written into recipe.yaml as a string: a control character (a newline is folded into a space
# by YAML, or ends the value) is refused before anything is written.
glue_check_text() {
  [[ $2 != *[[:cntrl:]]* ]] || glue_die "$1 holds a control character: $(printf '%q' "$2")"
}

# GPUs this process may use: CUDA_VISIBLE_DEVICES when set (empty or -1 means none), else nvidia-smi.
glue_visible_gpus() {
  if [[ -n ${CUDA_VISIBLE_DEVICES+set} ]]; then
    if [[ -z $CUDA_VISIBLE_DEVICES || $CUDA_VISIBLE_DEVICES == -1* ]]; then echo 0; return; fi
    local devices
    IFS=, read -r -a devices <<<"$CUDA_VISIBLE_DEVICES"
    echo "${#devices[@]}"
  elif command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true
  else
    echo 0
  fi
}

glue_is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# The command as one line a shell can run again.
glue_quote() {
  local quoted
  quoted=$(printf '%q ' "$@")
  echo "${quoted% }"
}

# glue_launch_command GPUS NNODES RDZV_ID: the command that starts the training app into the array GLUE_COMMAND:
# one process (no GPU, one node), torchrun on one node, or torchrun across NNODES nodes (NODE_RANK, and
# RDZV_ENDPOINT or MASTER_ADDR[:MASTER_PORT]); RDZV_ID names the job for a rendezvous backend. The GLUE and
# the other task kinds' scripts share it.
glue_launch_command() {
  local gpus=$1 nnodes=$2 rdzv_id=$3
  GLUE_COMMAND=()
  if ((gpus == 0 && nnodes == 1)); then
    GLUE_COMMAND=("${PYTHON:-python3}" -m DeBERTa.apps.train)
  elif ((nnodes == 1)); then
    # --standalone: a private rendezvous on a free port, so two jobs on one machine do not collide.
    GLUE_COMMAND=("${TORCHRUN:-torchrun}" --standalone --nproc_per_node "$gpus" -m DeBERTa.apps.train)
  else
    [[ -n ${NODE_RANK:-} ]] || glue_die "NNODES=$nnodes needs NODE_RANK (0 to $((nnodes - 1)), different on every node)"
    if ! glue_is_uint "$NODE_RANK" || ((NODE_RANK >= nnodes)); then
      glue_die "NODE_RANK must be 0 to $((nnodes - 1)) (got '$NODE_RANK')"
    fi
    local endpoint=${RDZV_ENDPOINT:-}
    if [[ -z $endpoint ]]; then
      [[ -n ${MASTER_ADDR:-} ]] || glue_die "NNODES=$nnodes needs MASTER_ADDR (the host of node 0) or RDZV_ENDPOINT (HOST:PORT)"
      endpoint=$MASTER_ADDR:${MASTER_PORT:-29500}
    fi
    GLUE_COMMAND=("${TORCHRUN:-torchrun}" --nproc_per_node "$((gpus > 0 ? gpus : 1))" --nnodes "$nnodes"
      --node_rank "$NODE_RANK" --rdzv_endpoint "$endpoint")
    if [[ -n ${RDZV_BACKEND:-} ]]; then
      GLUE_COMMAND+=(--rdzv_backend "$RDZV_BACKEND" --rdzv_id "${RDZV_ID:-$rdzv_id}")
    fi
    GLUE_COMMAND+=(-m DeBERTa.apps.train)
  fi
}

glue_main() {
  local dry_run=0
  while (($#)); do
    case "$1" in
      --dry-run) dry_run=1; shift ;;
      -h|--help) glue_usage; exit 0 ;;
      -*) glue_die "unknown option '$1' before MODEL (see --help)" ;;
      *) break ;;
    esac
  done
  (($#)) || { glue_usage >&2; exit 2; }
  local model=$1
  shift
  local extra_args=("$@")

  # The recipe is chosen by model size; an *_mnli name is the same size started from MNLI.
  local size=${model%_mnli} line recipe=""
  if [[ $size != "$model" && $FROM_MNLI != 1 ]]; then size=""; fi
  for line in "${RECIPES[@]}"; do
    [[ ${line%% *} == "$size" ]] && recipe=$line
  done
  [[ -n $recipe ]] || glue_die "unknown model '$model' for $TASK; choose one of: $(glue_model_names)"
  local max_seq_len epochs learning_rate batch warmup cls_drop_out
  read -r _ max_seq_len epochs learning_rate batch warmup cls_drop_out <<<"$recipe"

  local seed=${SEED:-1234}
  glue_is_uint "$seed" || glue_die "SEED must be a non-negative integer (got '$seed')"
  local data_root=${DATA_DIR:-/data}
  local init_model=$size
  if [[ $FROM_MNLI == 1 ]]; then init_model=${MNLI_MODEL:-${size}_mnli}; fi
  glue_run_recipe "$dry_run" "$model" "$size" "$seed" "$data_root/glue_tasks/$TASK" \
    "${OUTPUT_DIR:-$data_root/runs/$TASK-$size-seed$seed}" "${INIT_MODEL:-$init_model}" "INIT_MODEL/MNLI_MODEL" \
    "the published DeBERTa recipe, written by $(basename "$0")" \
    "get it with ./download_data.sh $data_root $TASK (or set DATA_DIR to the folder holding glue_tasks/)" \
    "$max_seq_len" "$epochs" "$learning_rate" "$batch" "$warmup" "$cls_drop_out" "${extra_args[@]}"
}

# glue_run_recipe DRY_RUN MODEL RUN_NAME SEED TASK_DATA OUTPUT_DIR INIT_MODEL INIT_VARIABLE HEADER DATA_HINT
#                 MAX_SEQ_LEN EPOCHS LEARNING_RATE BATCH WARMUP CLS_DROP_OUT [trainer options ...]
# The part every task script shares (GLUE's and the other tasks'): check the environment's settings, write
# the recipe as recipe.yaml into the run folder and start the training app on it (or print both: DRY_RUN 1).
# EXTRA_OPTIONS, when set, adds "key: value" lines to the recipe.
glue_run_recipe() {
  local dry_run=$1 model=$2 run_name=$3 seed=$4 task_data=$5 output_dir=$6 init_model=$7 init_variable=$8
  local header=$9 data_hint=${10} max_seq_len=${11} epochs=${12} learning_rate=${13} batch=${14} warmup=${15}
  local cls_drop_out=${16}
  shift 16
  local extra_args=("$@")

  local gpus=${NUM_GPUS:-$(glue_visible_gpus)}
  glue_is_uint "$gpus" || glue_die "NUM_GPUS must be a non-negative integer (got '$gpus')"
  local fp16=${FP16:-$((gpus > 0 ? 1 : 0))}
  case "$fp16" in 1|true) fp16=true ;; 0|false) fp16=false ;; *) glue_die "FP16 must be 1 or 0 (got '$fp16')" ;; esac

  # DUMP_INTERVAL becomes a YAML number: digits only (at most 9, no overflow), at least 1.
  local dump_interval=${DUMP_INTERVAL:-}
  if [[ -n $dump_interval ]] && { [[ ! $dump_interval =~ ^[0-9]{1,9}$ ]] || ((10#$dump_interval < 1)); }; then
    glue_die "DUMP_INTERVAL must be a positive integer (got $(printf '%q' "$dump_interval"))"
  fi
  glue_check_text "DATA_DIR" "$task_data"
  glue_check_text "OUTPUT_DIR" "$output_dir"
  glue_check_text "$init_variable" "$init_model"

  local nnodes=${NNODES:-1}
  if ! glue_is_uint "$nnodes" || ((nnodes < 1)); then glue_die "NNODES must be a positive integer (got '$nnodes')"; fi

  local recipe_file=$output_dir/recipe.yaml
  local yaml
  yaml=$(
    echo "# $TASK $model: $header"
    echo "task_name: $(glue_yaml_string "$TASK")"
    echo "do_train: true"
    echo "do_eval: true"
    echo "do_predict: true"
    echo "data_dir: $(glue_yaml_string "$task_data")"
    echo "output_dir: $(glue_yaml_string "$output_dir")"
    echo "init_model: $(glue_yaml_string "$init_model")"
    echo "max_seq_len: $max_seq_len"
    echo "num_train_epochs: $(glue_yaml_number "$epochs")"
    echo "learning_rate: $(glue_yaml_number "$learning_rate")"
    echo "train_batch_size: $batch"
    echo "eval_batch_size: 128"
    echo "predict_batch_size: 128"
    echo "warmup: $(glue_yaml_number "$warmup")"
    echo "cls_drop_out: $(glue_yaml_number "$cls_drop_out")"
    if [[ -n ${EXTRA_OPTIONS:-} ]]; then printf '%s\n' "$EXTRA_OPTIONS"; fi
    echo "fp16: $fp16"
    echo "seed: $seed"
    echo "tag: $(glue_yaml_string "$TASK-$model")"
    if [[ -n $dump_interval ]]; then echo "dump_interval: $((10#$dump_interval))"; fi
  )

  local cmd=()
  glue_launch_command "$gpus" "$nnodes" "deberta-$TASK-$run_name-seed$seed"
  cmd=("${GLUE_COMMAND[@]}")
  cmd+=(--config "$recipe_file" "${extra_args[@]}")

  if ((dry_run)); then
    echo "# $recipe_file"
    echo "$yaml"
    echo "# command"
    glue_quote "${cmd[@]}"
    return 0
  fi

  [[ -d $task_data ]] || glue_die "no $TASK data in $task_data; $data_hint"
  mkdir -p "$output_dir" || glue_die "cannot create the run folder $output_dir"
  if ! { printf '%s\n' "$yaml" >"$recipe_file.tmp" && mv "$recipe_file.tmp" "$recipe_file"; }; then
    glue_die "cannot write $recipe_file"
  fi
  echo "$(basename "$0"): $(glue_quote "${cmd[@]}")" >&2
  exec "${cmd[@]}"
}
