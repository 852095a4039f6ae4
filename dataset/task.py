"""The pointer-difference task, defined once: its layout, its rule, its valid inputs, its sampling.

With L slots per column (`Task(slots=L)`, L = 4 by default), an input is 2L + 2 integers read as
two columns of L + 1: `col1 = x[0:L]` (digits 0..9), `p1 = x[L]` (0..L-1), `col2 = x[L+1:2L+1]`,
`p2 = x[2L+1]`. With `a = col1[p1]` and `b = col2[p2]`, `target = |a - b|`. Example (L = 4):
[8, 9, 5, 1, 3, 2, 9, 4, 7, 1] -> a = 1, b = 9, target 8.

L is chosen once, by the data generator; every later stage reads it from the run: from the width
of its inputs (`task_of(x)`: 2L + 2 columns) or from the MLP's config (`PointerMLP.task`). The
functions that take inputs (`target`, `ground_truth`, `augment`, ...) read the task from their width.
"""
from dataclasses import dataclass
from functools import cached_property
from typing import Sequence

import numpy as np
import torch

from dataset.slots import DEFAULT_SLOTS, MAX_SLOTS, MIN_SLOTS, slots_problem  # noqa: F401 (the task's bounds on L)

N_DIGITS = 10         # digit values 0..9
# ground-truth variables of a sample, in the order reports show them
GT_VARIABLES = ("p1", "p2", "a", "b", "a-b", "target")
# the reference project's probe inputs (L = 4); `Task.reference_inputs` fits them to any L
REFERENCE_INPUTS = (
    (8, 9, 5, 1, 3, 2, 9, 4, 7, 1),
    (8, 9, 5, 2, 3, 2, 8, 4, 7, 1),
    (8, 9, 5, 3, 3, 2, 7, 4, 7, 1),
    (8, 9, 5, 4, 3, 2, 5, 4, 7, 1),
    (8, 9, 5, 5, 3, 2, 4, 4, 7, 1),
)
# independent random streams derived from one --seed: the data splits, the fresh inputs the SAE
# may be trained on, and the fresh inputs features are evaluated on never overlap in seed
SEED_STREAMS = {"train": 0, "val": 1, "test": 2, "harvest": 10, "analysis": 20, "explain": 21, "benchmark": 30,
                "sae_stream": 40, "sae_eval": 41}


_GOLDEN64 = 0x9E3779B97F4A7C15      # 2^64 / golden ratio: splitmix64's increment, an odd multiplier


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 [n]: a bijection of 64-bit words whose every output bit
    depends on every input bit."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_seed(seed: int, stream: str) -> int:
    return seed * 1000 + SEED_STREAMS[stream]


@dataclass(frozen=True)
class Task:
    """The task with `slots` digits per column: its layout (positions of the columns and pointers),
    its valid inputs, its sampling, its rule and its ground-truth variables."""
    slots: int = DEFAULT_SLOTS

    def __post_init__(self):
        problem = slots_problem(self.slots)
        if problem:
            raise ValueError(f"slots: {problem}")

    # ---- layout
    @property
    def n_inputs(self) -> int:
        return 2 * self.slots + 2

    @property
    def col1(self) -> slice:
        return slice(0, self.slots)

    @property
    def p1(self) -> int:
        return self.slots

    @property
    def col2(self) -> slice:
        return slice(self.slots + 1, 2 * self.slots + 1)

    @property
    def p2(self) -> int:
        return 2 * self.slots + 1

    @property
    def pointer_positions(self) -> list:
        return [self.p1, self.p2]

    @property
    def digit_positions(self) -> list:
        """The 2L digit positions, col1's then col2's."""
        return [i for i in range(self.n_inputs) if i not in (self.p1, self.p2)]

    @property
    def digit_variables(self) -> tuple:
        """The raw digits' ground-truth names, c1[0..L-1] then c2[0..L-1]."""
        return tuple(f"c1[{i}]" for i in range(self.slots)) + tuple(f"c2[{i}]" for i in range(self.slots))

    @property
    def value_limits(self) -> torch.Tensor:
        """Exclusive upper bound of each input position [2L + 2]: 10 for digits, L for pointers."""
        return torch.tensor([self.slots if i in (self.p1, self.p2) else N_DIGITS for i in range(self.n_inputs)])

    @property
    def n_cells(self) -> int:
        """The joint values of (p1, p2, a, b): L * L * 10 * 10."""
        return self.slots * self.slots * N_DIGITS * N_DIGITS

    @cached_property
    def reference_inputs(self) -> tuple:
        """The reference project's probe inputs, fitted to L slots: each column's digits repeated (or
        cut) to L, each pointer kept where it fits, else the last slot. At L = 4: REFERENCE_INPUTS."""
        out = []
        for r in REFERENCE_INPUTS:
            c1, p1, c2, p2 = r[0:4], r[4], r[5:9], r[9]
            fit = lambda col: tuple(col[i % 4] for i in range(self.slots))   # noqa: E731
            out.append(fit(c1) + (min(p1, self.slots - 1),) + fit(c2) + (min(p2, self.slots - 1),))
        return tuple(out)

    # ---- sampling
    def sample_inputs(self, n: int, seed: int = 0) -> torch.Tensor:
        """`n` fresh inputs, uniform over digits and pointers; the same seed gives the same inputs."""
        return self.draw_inputs(n, torch.Generator().manual_seed(seed))

    def draw_inputs(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """`n` fresh inputs [n, 2L + 2] drawn from `generator` (which advances: a stream of inputs)."""
        x = torch.randint(0, N_DIGITS, (n, self.n_inputs), generator=generator)  # [n, 2L + 2]
        x[:, [self.p1, self.p2]] = torch.randint(0, self.slots, (n, 2), generator=generator)
        return x

    # ---- validation
    def input_problem(self, values: Sequence[int], name: str = "input_list") -> str | None:
        """None when `values` is a valid input of the task (2L + 2 integers: digits 0..9, pointers
        0..L-1 at positions L and 2L + 1), else what is wrong with the first bad value, naming it
        `name[i]`, e.g. "input_list[4] = 7: expected a pointer in 0..3" or "input_list: expected 10
        integers, got 9"."""
        if len(values) != self.n_inputs:
            return f"{name}: expected {self.n_inputs} integers, got {len(values)}"
        for i, v in enumerate(values):
            if i in (self.p1, self.p2):
                if not 0 <= v < self.slots:
                    return f"{name}[{i}] = {v}: expected a pointer in 0..{self.slots - 1}"
            elif not 0 <= v < N_DIGITS:
                return f"{name}[{i}] = {v}: expected a digit in 0..{N_DIGITS - 1}"
        return None

    @property
    def key_radix(self) -> int:
        """The base of an input key's places: every value (digit or pointer) is below it."""
        return max(N_DIGITS, self.slots)

    @property
    def key_places(self) -> int:
        """Places per exact int64 word of a key: the most whose radix^places <= 2^63 (18 in base 10)."""
        places = 1
        while self.key_radix ** (places + 1) <= 2 ** 63:
            places += 1
        return places

    def input_keys(self, x: torch.Tensor) -> torch.Tensor:
        """One int64 per input [n], equal when the inputs are: its 2L + 2 values as places in base
        `key_radix` (10 up to L = 10), cut into exact words of `key_places` places from the left.

        Up to 18 values (L <= 8) there is one word and the key is exact (the values as base-10 places):
        equal exactly when the inputs are. Beyond, the words are folded into 64 bits by a mixing hash
        (splitmix64's finaliser after each word): equal inputs still get equal keys, and two different
        inputs share one with probability ~2^-64. The keys' one use (`sae.sources.StreamSource`) redraws
        a stream input whose key is a held-out input's, so a collision can only redraw a training input
        that was not held out: conservative, it never lets a held-out input through."""
        x = torch.as_tensor(x).long()
        words = []
        for start in range(0, self.n_inputs, self.key_places):                    # [n] each, exact
            part = x[:, start:start + self.key_places]
            words.append(part @ self.key_radix ** torch.arange(part.shape[1] - 1, -1, -1, dtype=torch.long))
        if len(words) == 1:
            return words[0]
        h = words[0].numpy().astype(np.uint64)        # uint64 arithmetic wraps mod 2^64 by definition
        for w in words[1:]:
            h = _mix64(h * np.uint64(_GOLDEN64) + w.numpy().astype(np.uint64))
        return torch.from_numpy(h.view(np.int64))

    # ---- the rule and the ground truth
    def pointed_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) = (col1[p1], col2[p2]) of each input."""
        x = torch.as_tensor(x)
        a = x[:, self.col1].gather(1, x[:, self.p1:self.p1 + 1]).squeeze(1)
        b = x[:, self.col2].gather(1, x[:, self.p2:self.p2 + 1]).squeeze(1)
        return a, b

    def ground_truth(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ground-truth variables of each input: p1, p2, a, b, a-b, target and the raw digits."""
        x = torch.as_tensor(x)
        gt = core_variables(x[:, self.p1], x[:, self.p2], *self.pointed_values(x))
        for name, i in zip(self.digit_variables, self.digit_positions):
            gt[name] = x[:, i]
        return gt

    def augment(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A label-preserving symmetry of the task: permute the L slots of each column (the
        pointer follows its digit) and swap the two columns half the time."""
        n, half = x.shape[0], self.slots + 1
        out = x.clone()
        for col, p in ((self.col1, self.p1), (self.col2, self.p2)):
            perm = torch.rand(n, self.slots, generator=generator).argsort(dim=1)    # new slot j holds old perm[j]
            out[:, col] = x[:, col].gather(1, perm)
            out[:, p] = perm.argsort(dim=1).gather(1, x[:, p:p + 1]).squeeze(1)  # where the old pointed slot went
        swap = torch.rand(n, generator=generator) < 0.5
        out[swap] = torch.cat([out[swap, half:], out[swap, :half]], dim=1)
        return out


DEFAULT_TASK = Task()


def task_of(x) -> Task:
    """The task whose inputs are x [n, 2L + 2] (read from their width)."""
    width = torch.as_tensor(x).shape[-1]
    if width % 2 or slots_problem((width - 2) // 2):
        raise ValueError(f"inputs of width {width}: expected 2L + 2 integers per input with L in "
                         f"{MIN_SLOTS}..{MAX_SLOTS}")
    return Task((width - 2) // 2)


def task_of_truth(gt: dict) -> Task:
    """The task whose ground truth `gt` is (as `ground_truth` returns it: one c1[i] per slot)."""
    return Task(sum(1 for k in gt if k.startswith("c1[")))


def sample_inputs(n: int, seed: int = 0) -> torch.Tensor:
    """`n` fresh inputs of the default task (L = 4); `Task(L).sample_inputs` for another."""
    return DEFAULT_TASK.sample_inputs(n, seed)


def input_keys(x: torch.Tensor) -> torch.Tensor:
    return task_of(x).input_keys(x)


def pointed_values(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return task_of(x).pointed_values(x)


def rule(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The task's rule on the two pointed-at values: |a - b|."""
    return (a - b).abs()


def target(x: torch.Tensor) -> torch.Tensor:
    """|col1[p1] - col2[p2]| of each input, as integers [n]."""
    return rule(*pointed_values(x))


def core_variables(p1: torch.Tensor, p2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ground-truth variables GT_VARIABLES from the two pointers and the values they point at
    (for inputs, or for the L * L * 100 (p1, p2, a, b) cells the analysis groups inputs into)."""
    return {"p1": p1, "p2": p2, "a": a, "b": b, "a-b": a - b, "target": rule(a, b)}


def ground_truth(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ground-truth variables of each input (of the task its width says)."""
    return task_of(x).ground_truth(x)


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return task_of(x).augment(x, generator)
