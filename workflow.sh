#!/usr/bin/env bash
# The whole pipeline, or the tests, on a fresh machine. The first run creates .venv and installs
# requirements.txt and the project (editable) into it (again whenever either changes).
#
#   ./workflow.sh                          run every stage into runs/default
#   ./workflow.sh --run-dir runs/x --seed 1   another run folder / seed
#   ./workflow.sh --from sae               resume the chain at a stage: data mlp harvest sae paper labels probe reports
#   ./workflow.sh test [PYTEST ARGS]       set up the same way, then run the test suite
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"
RUN_DIR=runs/default
SEED=0
FROM=data
MODE=pipeline
STAGES=(data mlp harvest sae paper labels probe reports)

if [[ "${1:-}" == "test" ]]; then MODE=test; shift; fi
if [[ $MODE == pipeline ]]; then
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --run-dir|--seed|--from)
        if [[ $# -lt 2 || -z "$2" || "$2" == --* ]]; then
          echo "error: workflow.sh: $1 needs a value (see ./workflow.sh --help)" >&2; exit 2
        fi
        case "$1" in --run-dir) RUN_DIR="$2" ;; --seed) SEED="$2" ;; --from) FROM="$2" ;; esac
        shift 2 ;;
      -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
      *) echo "error: workflow.sh: unknown argument '${1:0:80}' (see ./workflow.sh --help)" >&2; exit 2 ;;
    esac
  done
  # the same range as every stage's --seed (common/validate.py), checked before the slow set-up
  if [[ ! $SEED =~ ^[0-9]{1,10}$ ]] || (( 10#$SEED > 4294967295 )); then
    echo "error: workflow.sh: --seed '${SEED:0:80}': expected an integer 0..4294967295" >&2; exit 2
  fi
  if [[ ! " ${STAGES[*]} " =~ " $FROM " ]]; then
    echo "error: workflow.sh: --from '${FROM:0:80}': expected one of: ${STAGES[*]}" >&2; exit 2
  fi
fi

START=$(date +%s)
TOTAL=9

setup_env() {
  local want
  want=$(cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
  if [[ -x "$PY" && -f "$VENV/.requirements" && "$(cat "$VENV/.requirements")" == "$want" ]]; then
    echo "      .venv is up to date"
    return
  fi
  local base=python3
  command -v python3.11 >/dev/null 2>&1 && base=python3.11
  "$base" -m venv "$VENV"
  "$PY" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  "$PY" -m pip install --quiet -r requirements.txt
  # the project's own packages, editable: importable from anywhere (notebooks, stage 1 as a plain script)
  "$PY" -m pip install --quiet --no-deps -e .
  echo "$want" > "$VENV/.requirements"
  echo "      installed requirements.txt into .venv"
}

echo "[1/$TOTAL] Setting up environment..."
setup_env || { echo "FAILED at stage: Setting up environment" >&2; exit 1; }

install_for_tests() {  # Debian package, command it provides, what for
  command -v "$2" >/dev/null 2>&1 && return
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "      installing Debian's $1 for the $3..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1") >/dev/null \
      || echo "      could not install $1: the $3 will be skipped (and fail under CI=true)" >&2
  else
    echo "      $2 missing (apt-get install $1): the $3 will be skipped (and fail under CI=true)" >&2
  fi
}

if [[ $MODE == test ]]; then
  install_for_tests chromium chromium "browser tests"
  # LibreOffice Calc, headless (~90 MB download): tests/dataset/test_excel_apps.py opens every workbook in it
  install_for_tests libreoffice-calc-nogui soffice "spreadsheet-application tests"
  echo "Running tests..."
  exec "$PY" -m pytest "$@"
fi

COMMON=(--run-dir "$RUN_DIR" --seed "$SEED")
# the SAE learns from fresh inputs of the task, not only the 8000 training rows: see README
HARVEST_ARGS=(--n-samples 310000)  # 300k to train on + 10k held out, none of them training rows

run_stage() {  # n, name, key, command...
  local n=$1 title=$2 key=$3; shift 3
  if [[ $(stage_index "$key") -lt $(stage_index "$FROM") ]]; then
    echo "[$n/$TOTAL] $title... skipped (--from $FROM)"; return
  fi
  echo "[$n/$TOTAL] $title..."
  if ! "$@"; then
    echo "FAILED at stage [$n/$TOTAL] $title (fix the error above, then: ./workflow.sh --from $key)" >&2
    exit 1
  fi
}
stage_index() { local i; for i in "${!STAGES[@]}"; do [[ "${STAGES[$i]}" == "$1" ]] && echo "$i"; done; }

run_stage 2 "Generating dataset" data "$PY" dataset/data_generator.py "${COMMON[@]}"
run_stage 3 "Training MLP" mlp "$PY" train_mlp.py "${COMMON[@]}"
run_stage 4 "Harvesting activations" harvest "$PY" harvest_activations.py "${COMMON[@]}" "${HARVEST_ARGS[@]}"
run_stage 5 "Training sparse autoencoder" sae "$PY" train_sae.py "${COMMON[@]}"
# the design card's SAE beside the default one: the paper's L1/ReLU architecture, 2048 features, its sparse recipe
run_stage 6 "Training the paper's SAE (relu, 2048 features)" paper "$PY" train_sae.py "${COMMON[@]}" \
  --name paper --architecture relu --d-sae 2048
run_stage 7 "Labelling features of every SAE" labels "$PY" label_features.py "${COMMON[@]}" --sae all
run_stage 8 "Probing features" probe "$PY" feature_probe.py "${COMMON[@]}"
run_stage 9 "Generating reports" reports "$PY" feature_reports.py "${COMMON[@]}"

"$PY" run_summary.py --run-dir "$RUN_DIR" --seconds $(( $(date +%s) - START ))
