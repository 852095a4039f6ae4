#!/usr/bin/env bash
# The whole pipeline, or the tests, on a fresh machine. The first run creates .venv and installs
# requirements.txt and the project (editable) into it (again whenever either changes); the pipeline
# itself (its stages, their order, --from, the summary) is run_pipeline.py, which gets the arguments.
#
#   ./workflow.sh                          run every stage into runs/default
#   ./workflow.sh --run-dir runs/x --seed 1   another run folder / seed
#   ./workflow.sh --slots 8 --run-dir runs/s8   a task of 8 digits per column (2..8; later stages read it from the run)
#   ./workflow.sh --from sae               resume the chain at a stage: data mlp harvest sae paper labels probe reports
#   ./workflow.sh test [PYTEST ARGS]       set up the same way, then run the test suite
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PY="$VENV/bin/python"
BASE=python3
command -v python3.11 >/dev/null 2>&1 && BASE=python3.11
TOTAL=9   # 1 (this set-up) + the stages of common/pipeline.py (tests/stages/test_pipeline.py checks it)
MODE=pipeline
if [[ "${1:-}" == "test" ]]; then MODE=test; shift; fi

if [[ $MODE == pipeline ]]; then
  for arg in "$@"; do
    if [[ $arg == -h || $arg == --help ]]; then sed -n '2,10p' "$0"; echo; exec "$BASE" run_pipeline.py --help; fi
  done
  # the flags, checked by the system Python (run_pipeline.py --check needs no package) before the slow set-up
  "$BASE" run_pipeline.py --check "$@" || exit $?
fi

setup_env() {
  local want
  want=$(cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
  if [[ -x "$PY" && -f "$VENV/.requirements" && "$(cat "$VENV/.requirements")" == "$want" ]]; then
    echo "      .venv is up to date"
    return
  fi
  "$BASE" -m venv "$VENV"
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
  # wine (with wine64) runs workflow.bat in tests/test_workflow_bat.py, with a stand-in python.exe built by mingw's gcc
  install_for_tests wine wine "workflow.bat tests"
  install_for_tests gcc-mingw-w64-x86-64 x86_64-w64-mingw32-gcc "workflow.bat tests"
  echo "Running tests..."
  exec "$PY" -m pytest "$@"
fi

exec "$PY" run_pipeline.py "$@"
