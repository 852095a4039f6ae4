"""How many slots a column of the task may have: standard library only, so `run_pipeline.py --check`
(run by the system Python before .venv exists) refuses a bad `--slots` before the set-up.

`dataset.task.Task(slots=L)` is the task itself; this module only bounds L.
"""
DEFAULT_SLOTS = 4     # the seed's task, the default run's
MIN_SLOTS = 2         # one slot would make the pointers constant
# `Task.input_keys` no longer bounds L: exact (base-10 places in one int64) up to L = 8, a 64-bit hash of
# exact words beyond. The Excel cell (2L + 2 integers as text) and the MLP's 4L inputs are nowhere near a limit.
MAX_SLOTS = 16
# The MLP's recipe scales with L through its training rows alone: 500 per (p1, p2) pointer pair, L * L
# of them (8000 at L = 4, the seed's recipe). Measured (README, "The MLP at L = 8"): at L = 8 the seed's
# 8000 rows give 94.1% exact-match on 50,000 fresh inputs, 32,000 rows give 100%, with the same
# epochs, widths and schedule.
TRAIN_ROWS_PER_POINTER_PAIR = 500


def default_n_train(slots: int) -> int:
    """The data generator's default training rows for a task of `slots` per column."""
    return TRAIN_ROWS_PER_POINTER_PAIR * slots * slots


def slots_problem(slots) -> str | None:
    """None when `slots` is a usable number of slots per column, else what is expected."""
    if isinstance(slots, bool) or not isinstance(slots, int) or not MIN_SLOTS <= slots <= MAX_SLOTS:
        return (f"expected {MIN_SLOTS}..{MAX_SLOTS} slots per column ({MAX_SLOTS}: the most an input's "
                f"int64 key holds), got {slots!r}")
    return None
