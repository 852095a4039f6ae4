"""What torchrun launches in tests/sae/test_distributed.py: train_sae.py's main, with two test hooks
read from the environment: each rank writes its pid to $PID_DIR/rank<R>.pid (so a test can kill
one), and with RANK_DIRS=1 rank R uses the run folder <--run-dir>-rank<R> (so a test can see that
rank 1 writes nothing)."""
import os
import sys
from pathlib import Path

import train_sae
from common.cli import run_main

rank = os.environ.get("RANK", "0")
if os.environ.get("PID_DIR"):
    Path(os.environ["PID_DIR"], f"rank{rank}.pid").write_text(str(os.getpid()))
argv = sys.argv[1:]
if os.environ.get("RANK_DIRS"):
    i = argv.index("--run-dir") + 1
    argv[i] = f"{argv[i]}-rank{rank}"
run_main(train_sae.main, train_sae.parse_args(argv))
