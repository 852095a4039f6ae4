"""The concept grammar: yes/no statements about an input's ground truth, and their truth matrix.

A *condition* is one comparison of a ground-truth variable with a constant: an equality
(`p1 = 2`, `a - b = 3`) or a threshold (`a >= 7`, `target <= 2`; `a - b >= 1` is the sign of
a - b). A *concept* is one condition or the conjunction of two conditions on different variables
(`p1 = 2 & a >= 5`). Variables: the task's `p1, p2, a, b, a - b, target` and the 2L raw digits
`c1[0..L-1], c2[0..L-1]` (digits enter as single conditions only: conjunctions of digits would add
thousands of concepts the MLP has no reason to hold).

The *split-aware* grammar (`concept_set(pointer_pairs=True)`) adds the conjunctions of a pointer
pair with one value condition (`p1 = 3 & p2 = 1 & a - b <= -1`): what an overcomplete dictionary's
features split into (one pointer pair plus a value region), which no two-condition concept can name.
Its cost at L = 4: 2,080 more concepts (6,756 in all; the pointer pairs grow as L^2), so the best of more candidates is chosen for every
unit, random directions included (the control measures it). With the cells (L^2 * 100) its truth table
grows as ~L^4: 16,700 concepts at L = 8, 49,932 at L = 16 (a 1.2 GiB table, built in ~2 minutes); that
growth is what bounds L (`dataset.slots.MAX_SLOTS`, measured there). Every L the task allows gets the
whole grammar: restricting the split-aware part alone would not let L = 32 fit (its two-condition
conjunctions are already a 4 GiB table, x4 as the float32 copy `analysis.explain` scores on).

Why it is fast: `p1, p2, a, b` (and so `a - b` and `target`) take only L * L * 10 * 10 joint
values (1600 at L = 4), the *cells*. The truth of every non-digit concept is a function of the cell, so the
grammar is stored as a [1600, n_concepts] truth table and scoring a unit reduces to counting its
activity per cell (see `analysis.explain`); only the ~200 digit concepts are evaluated per input.

Concepts whose truth is identical on every cell (`a >= 9` and `a = 9`; `target = 0` and
`a - b = 0`) are kept once, under the first name in grammar order (single conditions before
conjunctions, equalities before thresholds, variables in the order p1, p2, a, b, a - b, target);
`ConceptSet.column(name)` still finds every spelling. Concepts true on no cell are dropped.

The grammar is the task's (`dataset.task.Task`): pointer values 0..L-1, L digits per column. Functions
given inputs or their ground truth read the task from them; the others take it.
"""
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from dataset.task import N_DIGITS, Task, task_of, task_of_truth

# the variables that fix a cell, and the ones derived from them
CELL_VARIABLES = ("p1", "p2", "a", "b")
CORE_VARIABLES = ("p1", "p2", "a", "b", "a-b", "target")
# the ground-truth magnitudes a ramp may track
MAGNITUDES = ("a", "b", "a-b", "target")
OPS = ("=", ">=", "<=")


def value_ranges(task: Task) -> dict:
    """The values each ground-truth variable of `task` takes."""
    return {"p1": range(task.slots), "p2": range(task.slots), "a": range(N_DIGITS), "b": range(N_DIGITS),
            "a-b": range(-(N_DIGITS - 1), N_DIGITS), "target": range(N_DIGITS),
            **{d: range(N_DIGITS) for d in task.digit_variables}}


def display_name(var: str) -> str:
    return "a - b" if var == "a-b" else var


@dataclass(frozen=True)
class Condition:
    var: str      # a ground-truth variable (keys of dataset.task.ground_truth)
    op: str       # "=", ">=" or "<="
    value: int

    def holds(self, values: torch.Tensor) -> torch.Tensor:
        if self.op == "=":
            return values == self.value
        if self.op == ">=":
            return values >= self.value
        return values <= self.value

    def __str__(self) -> str:
        return f"{display_name(self.var)} {self.op} {self.value}"


@dataclass(frozen=True)
class Concept:
    conditions: tuple   # of Condition: 1 or 2 (3 in the split-aware grammar)

    @property
    def name(self) -> str:
        return " & ".join(str(c) for c in self.conditions)

    @property
    def variables(self) -> tuple:
        return tuple(c.var for c in self.conditions)

    def holds(self, gt: dict) -> torch.Tensor:
        out = self.conditions[0].holds(gt[self.conditions[0].var])
        for c in self.conditions[1:]:
            out = out & c.holds(gt[c.var])
        return out


def conditions_of(var: str, task: Task) -> list:
    """Equalities on every value, then the thresholds that cut the range in two (no always-true ones)."""
    values = list(value_ranges(task)[var])
    lo, hi = values[0], values[-1]
    out = [Condition(var, "=", v) for v in values]
    out += [Condition(var, ">=", v) for v in values if v > lo]
    out += [Condition(var, "<=", v) for v in values if v < hi]
    return out


def cell_ground_truth(task: Task) -> dict:
    """The core variables on each of the task's cells, as LongTensors [n_cells] (1600 at L = 4)."""
    ranges = value_ranges(task)
    p1, p2, a, b = torch.meshgrid(*(torch.arange(len(ranges[v])) for v in CELL_VARIABLES), indexing="ij")
    p1, p2, a, b = (t.flatten() for t in (p1, p2, a, b))
    return {"p1": p1, "p2": p2, "a": a, "b": b, "a-b": a - b, "target": (a - b).abs()}


def cell_index(gt: dict, task: Task | None = None) -> torch.Tensor:
    """The cell of each input [n] from its ground truth (as `ground_truth(x)` returns it, which says the
    task; a dict of the core variables alone needs `task`)."""
    slots = (task or task_of_truth(gt)).slots
    return ((gt["p1"] * slots + gt["p2"]) * N_DIGITS + gt["a"]) * N_DIGITS + gt["b"]


class ConceptSet:
    """The grammar's concepts, deduplicated, with their truth on cells (non-digit concepts) or per input
    (digit concepts) of `task`. Columns: `cell_concepts` first, then `digit_concepts`."""

    def __init__(self, task: Task, conjunctions: bool = True, pointer_pairs: bool = False):
        self.task = task
        ranges = value_ranges(task)
        cell_gt = cell_ground_truth(task)
        conds = [c for var in CORE_VARIABLES for c in conditions_of(var, task)]
        single_truth = torch.stack([c.holds(cell_gt[c.var]) for c in conds], dim=1).numpy()   # [n_cells, n_conds]
        candidates = [Concept((c,)) for c in conds]
        truth = [single_truth]
        if conjunctions:
            var_id = np.array([CORE_VARIABLES.index(c.var) for c in conds])
            i, j = np.triu_indices(len(conds), k=1)
            i, j = i[var_id[i] != var_id[j]], j[var_id[i] != var_id[j]]
            candidates += [Concept((conds[a], conds[b])) for a, b in zip(i, j)]
            truth.append(single_truth[:, i] & single_truth[:, j])
        if pointer_pairs:                  # p1 = k & p2 = l & one condition on a, b, a - b or target
            index = {c: n for n, c in enumerate(conds)}
            pairs = [(index[Condition("p1", "=", k)], index[Condition("p2", "=", m)])
                     for k in ranges["p1"] for m in ranges["p2"]]
            values = [n for n, c in enumerate(conds) if c.var in MAGNITUDES]
            triples = np.array([(p, q, v) for p, q in pairs for v in values])
            candidates += [Concept((conds[p], conds[q], conds[v])) for p, q, v in triples]
            truth.append(single_truth[:, triples[:, 0]] & single_truth[:, triples[:, 1]] & single_truth[:, triples[:, 2]])
        truth = np.concatenate(truth, axis=1)                                            # [n_cells, n_candidates]
        # dedupe by truth column, keep the first spelling; drop never-true concepts
        packed = np.packbits(truth, axis=0).T                                           # [n_candidates, 200]
        _, first = np.unique(packed, axis=0, return_index=True)
        keep = np.zeros(len(candidates), bool)
        keep[first] = True
        keep &= truth.any(0)
        keep_idx = np.flatnonzero(keep)
        self.cell_concepts = [candidates[i] for i in keep_idx]
        self.cell_truth = torch.from_numpy(truth[:, keep_idx].copy())                   # [n_cells, n_cell] bool
        self.digit_concepts = [Concept((c,)) for var in task.digit_variables for c in conditions_of(var, task)]
        self.concepts = self.cell_concepts + self.digit_concepts
        self.names = [c.name for c in self.concepts]
        # every spelling -> its column (aliases of deduplicated concepts included)
        rep = {packed[i].tobytes(): j for j, i in enumerate(keep_idx)}
        self._column = {}
        for i, c in enumerate(candidates):
            j = rep.get(packed[i].tobytes())
            if j is not None and truth[:, i].any():
                self._column.setdefault(c.name, j)
        for j, c in enumerate(self.digit_concepts):
            self._column[c.name] = len(self.cell_concepts) + j
        self.is_single = np.array([len(c.conditions) == 1 for c in self.concepts])

    @property
    def n_cell(self) -> int:
        return len(self.cell_concepts)

    def __len__(self) -> int:
        return len(self.concepts)

    def column(self, name: str) -> int:
        """The column of a concept, under any of its spellings (e.g. 'target = 0' -> 'a - b = 0')."""
        name = " ".join(name.split())
        if name not in self._column and " & " in name:   # the two conditions in either order
            first, second = name.split(" & ", 1)
            name = f"{second} & {first}" if f"{second} & {first}" in self._column else name
        if name not in self._column:
            raise KeyError(f"{name!r} is not a concept of the grammar")
        return self._column[name]

    def digit_truth(self, gt: dict) -> torch.Tensor:
        """Truth of the digit concepts per input, bool [n, n_digit]."""
        return torch.stack([c.holds(gt) for c in self.digit_concepts], dim=1)

    def truth(self, x: torch.Tensor) -> torch.Tensor:
        """The full truth matrix of inputs x [n, 2L+2]: bool [n, n_concepts]."""
        gt = self.task.ground_truth(x)
        return torch.cat([self.cell_truth[cell_index(gt, self.task)], self.digit_truth(gt)], dim=1)

    def concept_truth(self, col: int, gt: dict, cells: torch.Tensor) -> torch.Tensor:
        """Truth of one concept (by column) per input, bool [n]."""
        if col < self.n_cell:
            return self.cell_truth[cells, col]
        return self.digit_concepts[col - self.n_cell].holds(gt)


@lru_cache(maxsize=4)
def concept_set(task: Task, conjunctions: bool = True, pointer_pairs: bool = False) -> ConceptSet:
    """The task's grammar, built once per process (about a second at L = 4); `pointer_pairs=True`: the
    split-aware one."""
    return ConceptSet(task, conjunctions, pointer_pairs)


def core_concepts(task: Task) -> tuple:
    """The core value concepts of the issue: p1 = k, p2 = k, a = v, b = v, target = v (38 at L = 4)."""
    return tuple([f"p1 = {k}" for k in range(task.slots)] + [f"p2 = {k}" for k in range(task.slots)]
                 + [f"a = {v}" for v in range(N_DIGITS)] + [f"b = {v}" for v in range(N_DIGITS)]
                 + [f"target = {v}" for v in range(N_DIGITS)])


def explanation_truth(names, x: torch.Tensor) -> torch.Tensor:
    """bool [n, len(names)]: where each explanation's concept (a ramp's: its support) holds on inputs x;
    an empty explanation holds nowhere."""
    task = task_of(x)
    cs = concept_set(task, pointer_pairs=True)
    gt = task.ground_truth(x)
    cells = cell_index(gt, task)
    out = torch.zeros(len(x), len(names), dtype=torch.bool)
    cols = {j: cs.column(name.split(" | ", 1)[1] if name.startswith("ramp ") else name)
            for j, name in enumerate(names) if isinstance(name, str) and name}
    on_cells = [j for j, col in cols.items() if col < cs.n_cell]       # functions of the cell: one gather
    if on_cells:
        out[:, on_cells] = cs.cell_truth[:, [cols[j] for j in on_cells]][cells]
    for j, col in cols.items():
        if col >= cs.n_cell:
            out[:, j] = cs.concept_truth(col, gt, cells)
    return out
