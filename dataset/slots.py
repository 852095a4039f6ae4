"""How many slots a column of the task may have: standard library only, so `run_pipeline.py --check`
(run by the system Python before .venv exists) refuses a bad `--slots` before the set-up.

`dataset.task.Task(slots=L)` is the task itself; this module only bounds L.
"""
DEFAULT_SLOTS = 4     # the seed's task, the default run's
MIN_SLOTS = 2         # one slot would make the pointers constant
# What bounds L is the labels' concept grammar (analysis/concepts.py): its truth table is [cells x concepts]
# with L * L * 100 cells and, in the split-aware grammar, L * L pointer pairs times ~140 value conditions, so
# ~L^4 entries, and `analysis.explain` scores on a float32 copy of it. Measured under load (one thread,
# `ConceptSet(Task(L), pointer_pairs=True)`): L = 8: 16,700 concepts, 10 s, 0.6 GiB peak; L = 16: 49,932
# concepts, 115 s, 4.3 GiB peak, a 1.2 GiB table (4.7 GiB as float32). L = 32 (counted, not built): 102,400
# cells x 184,000 candidate concepts, a 17.6 GiB bool table before deduplication (4 GiB for the two-condition
# conjunctions alone), x4 as float32: past this 24 GiB machine. So L <= 16. (`Task.input_keys` no longer
# bounds L: exact up to L = 8, a 64-bit hash of exact words beyond; the Excel cell and the MLP's 4L inputs
# are nowhere near a limit.)
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
        return (f"expected {MIN_SLOTS}..{MAX_SLOTS} slots per column ({MAX_SLOTS}: the largest whose concept "
                f"grammar fits in memory), got {slots!r}")
    return None
