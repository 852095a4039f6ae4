"""The pointer-difference task, defined once: its layout, its rule, its valid inputs, its sampling.

An input is ten integers read as two columns of five: `col1 = x[0:4]` (digits 0..9),
`p1 = x[4]` (0..3), `col2 = x[5:9]`, `p2 = x[9]`. With `a = col1[p1]` and `b = col2[p2]`,
`target = |a - b|`. Example: [8, 9, 5, 1, 3, 2, 9, 4, 7, 1] -> a = 1, b = 9, target 8.
"""
from typing import Sequence

import torch

N_INPUTS = 10
N_SLOTS = 4           # digits per column
N_DIGITS = 10         # digit values 0..9
COL1, P1, COL2, P2 = slice(0, 4), 4, slice(5, 9), 9
# ground-truth variables of a sample, in the order reports show them
GT_VARIABLES = ("p1", "p2", "a", "b", "a-b", "target")
DIGIT_VARIABLES = tuple(f"c1[{i}]" for i in range(N_SLOTS)) + tuple(f"c2[{i}]" for i in range(N_SLOTS))
# the reference project's probe inputs
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


def stream_seed(seed: int, stream: str) -> int:
    return seed * 1000 + SEED_STREAMS[stream]


def sample_inputs(n: int, seed: int = 0) -> torch.Tensor:
    """`n` fresh inputs, uniform over digits and pointers; the same seed gives the same inputs."""
    return draw_inputs(n, torch.Generator().manual_seed(seed))


def draw_inputs(n: int, generator: torch.Generator) -> torch.Tensor:
    """`n` fresh inputs [n, 10] drawn from `generator` (which advances: a stream of inputs)."""
    x = torch.randint(0, N_DIGITS, (n, N_INPUTS), generator=generator)  # [n, 10]
    x[:, [P1, P2]] = torch.randint(0, N_SLOTS, (n, 2), generator=generator)
    return x


def input_keys(x: torch.Tensor) -> torch.Tensor:
    """One int64 per input [n] (its ten values as base-10 digits), equal exactly when the inputs are."""
    weights = N_DIGITS ** torch.arange(N_INPUTS - 1, -1, -1, dtype=torch.long)
    return torch.as_tensor(x).long() @ weights


def input_problem(values: Sequence[int], name: str = "input_list") -> str | None:
    """None when `values` is a valid input of the task (10 integers: digits 0..9, pointers 0..3 at
    positions 4 and 9), else what is wrong with the first bad value, naming it `name[i]`, e.g.
    "input_list[4] = 7: expected a pointer in 0..3" or "input_list: expected 10 integers, got 9"."""
    if len(values) != N_INPUTS:
        return f"{name}: expected {N_INPUTS} integers, got {len(values)}"
    for i, v in enumerate(values):
        if i in (P1, P2):
            if not 0 <= v < N_SLOTS:
                return f"{name}[{i}] = {v}: expected a pointer in 0..{N_SLOTS - 1}"
        elif not 0 <= v < N_DIGITS:
            return f"{name}[{i}] = {v}: expected a digit in 0..{N_DIGITS - 1}"
    return None


def pointed_values(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) = (col1[p1], col2[p2]) of each input."""
    x = torch.as_tensor(x)
    a = x[:, COL1].gather(1, x[:, P1:P1 + 1]).squeeze(1)
    b = x[:, COL2].gather(1, x[:, P2:P2 + 1]).squeeze(1)
    return a, b


def rule(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The task's rule on the two pointed-at values: |a - b|."""
    return (a - b).abs()


def target(x: torch.Tensor) -> torch.Tensor:
    """|col1[p1] - col2[p2]| of each input, as integers [n]."""
    return rule(*pointed_values(x))


def core_variables(p1: torch.Tensor, p2: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ground-truth variables GT_VARIABLES from the two pointers and the values they point at
    (for inputs, or for the 1600 (p1, p2, a, b) cells the analysis groups inputs into)."""
    return {"p1": p1, "p2": p2, "a": a, "b": b, "a-b": a - b, "target": rule(a, b)}


def ground_truth(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ground-truth variables of each input: p1, p2, a, b, a-b, target and the raw digits."""
    x = torch.as_tensor(x)
    gt = core_variables(x[:, P1], x[:, P2], *pointed_values(x))
    for i, name in enumerate(DIGIT_VARIABLES):
        gt[name] = x[:, i if i < N_SLOTS else i + 1]
    return gt


def augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A label-preserving symmetry of the task: permute the four slots of each column (the
    pointer follows its digit) and swap the two columns half the time."""
    n = x.shape[0]
    out = x.clone()
    for col, p in ((COL1, P1), (COL2, P2)):
        perm = torch.rand(n, N_SLOTS, generator=generator).argsort(dim=1)    # new slot j holds old perm[j]
        out[:, col] = x[:, col].gather(1, perm)
        out[:, p] = perm.argsort(dim=1).gather(1, x[:, p:p + 1]).squeeze(1)  # where the old pointed slot went
    swap = torch.rand(n, generator=generator) < 0.5
    out[swap] = torch.cat([out[swap, 5:], out[swap, :5]], dim=1)
    return out
