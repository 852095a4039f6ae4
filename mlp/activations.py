"""The MLP's harvested hidden layer: computing it, counting which units fire, and its file.

The activations file is a dict:
    {"activations": float32 [N, d_hidden], "inputs": int64 [N, 2L+2] (L: the MLP's task), "targets": int64 [N],
     "source": str (where the inputs came from), "hook": str (the hook point read),
     "provenance": {"digest": of activations and inputs, "made_from": {"mlp": ..., "data": the Excel file}}}
"""
from pathlib import Path
from typing import Callable

import torch

from common import provenance
from common.io import PipelineError, atomic_torch_save, require_inputs, require_keys, safe_torch_load
from dataset.task import DEFAULT_TASK, MAX_SLOTS, MIN_SLOTS, slots_problem, target, task_of
from mlp.mlp_definition import HIDDEN_HOOK, load_mlp
from sae.splice import iter_chunks

ACTIVATIONS_REMEDY = "re-run harvest_activations.py"


@torch.no_grad()
def harvest(model, x: torch.Tensor, batch_size: int = 65536,
            on_chunk: Callable[[int], None] | None = None) -> torch.Tensor:
    """Hidden activations [N, d_hidden] of inputs x [N, 2L+2], written chunk by chunk into one
    preallocated tensor, so peak memory is the result plus one chunk. `on_chunk(rows)` is called
    after each chunk with the number of rows it held (for a progress bar)."""
    if batch_size < 1:  # no chunk would run, leaving the buffer uninitialised
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = torch.empty(len(x), model.cfg.d_hidden, dtype=torch.float32)   # [N, d_hidden]
    for c in iter_chunks(model, None, x, batch_size):
        out[c.start:c.start + len(c.hidden)] = c.hidden.cpu()
        if on_chunk is not None:
            on_chunk(len(c.hidden))
    return out


def firing_counts(acts: torch.Tensor, batch_size: int = 65536) -> torch.Tensor:
    """How many rows each unit is active (> 0) on, [d]; chunked so no [N, d] temporary is made."""
    return sum((acts[i:i + batch_size] > 0).sum(0) for i in range(0, len(acts), batch_size))


def save_activations(path: Path, acts: torch.Tensor, x: torch.Tensor, source: str, made_from: dict) -> dict:
    """Write activations [N, d_hidden] of inputs x [N, 2L+2] with their targets and provenance record
    (`made_from`: the MLP, and the data file when there is one), atomically; returns the record."""
    record = provenance.make_record(provenance.digest_of({"activations": acts, "inputs": x}), made_from)
    atomic_torch_save({"activations": acts, "inputs": x, "targets": target(x),
                       "source": source, "hook": HIDDEN_HOOK, provenance.KEY: record}, path)
    return record


def load_activations(path, remedy: str = ACTIVATIONS_REMEDY) -> dict:
    """Load and check an activations file: float activations [N, d] (finite), integer inputs [N, 2L+2] that
    are valid inputs of the task (of L slots: their width says which), and targets [N] equal to the task's rule on them. Anything else is a
    one-line PipelineError naming the file: a hand-edited or foreign file must not reach training."""
    data = safe_torch_load(path, "activations file", remedy)
    require_keys(data, ["activations", "inputs", "targets"], path, "activations file", remedy)
    a, x, y = data["activations"], data["inputs"], data["targets"]
    if not (torch.is_tensor(a) and a.dim() == 2 and torch.is_tensor(x) and x.dim() == 2 and len(x) == len(a)
            and x.shape[1] % 2 == 0 and not slots_problem((x.shape[1] - 2) // 2)):
        raise PipelineError(f"{path}: activations must be [N, d] with inputs [N, {DEFAULT_TASK.n_inputs}] (or [N, 2L + 2] "
                            f"for a task of L = {MIN_SLOTS}..{MAX_SLOTS} slots per column); {remedy}")
    if not (a.is_floating_point() and torch.is_tensor(y) and y.shape == (len(a),)):
        raise PipelineError(f"{path}: activations must be floats [N, d] with targets [N]; {remedy}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool or y.is_floating_point() or y.dtype == torch.bool:
        raise PipelineError(f"{path}: inputs and targets must be integers, got {x.dtype} and {y.dtype}; {remedy}")
    task = task_of(x)
    limits = task.value_limits                                         # [2L+2]
    chunk = 65536
    for i in range(0, len(a), chunk):
        if not bool(torch.isfinite(a[i:i + chunk]).all()):
            raise PipelineError(f"{path}: activations hold NaN or infinite values; {remedy}")
        xs = x[i:i + chunk].long()                                     # [chunk, 2L+2]
        bad = ((xs < 0) | (xs >= limits)).any(1).nonzero()
        if len(bad):
            row = i + int(bad[0])
            problem = task.input_problem(x[row].tolist(), f"inputs[{row}]")
            raise PipelineError(f"{path}: {problem}; {remedy}")
        wrong = (target(xs) != y[i:i + chunk].long()).nonzero()
        if len(wrong):
            row = i + int(wrong[0])
            raise PipelineError(f"{path}: targets[{row}] = {int(y[row])} disagrees with inputs[{row}]: expected "
                                f"{int(target(xs[row - i:row - i + 1])[0])} = |col1[p1] - col2[p2]|; {remedy}")
    provenance.record_of(data, path, "activations file", remedy)   # what it was harvested from
    return data


def load_training_inputs(paths, stream: bool = False, seed: int = 0):
    """(activations dict, MLP) an SAE of the run at `paths` (a RunPaths) is trained or evaluated on, the
    activations checked to be made from that MLP; a missing input names the stage to run first. With
    `stream` there is no file: the dict holds the source and the MLP's entry. `made_from` says what an
    SAE made from them is made from."""
    if stream:
        require_inputs(paths, "mlp")
        mlp = load_mlp(paths.mlp)
        return {"stream": True, "source": f"stream:seed={seed}",
                "made_from": {"mlp": provenance.entry(paths.mlp, mlp.provenance["digest"], paths.root)}}, mlp
    require_inputs(paths, "activations")
    data = load_activations(paths.activations)
    require_inputs(paths, "mlp")
    mlp = load_mlp(paths.mlp)
    if data["activations"].shape[1] != mlp.cfg.d_hidden:  # (robustness) harvested from another MLP
        raise PipelineError(f"{paths.activations}: activations are {data['activations'].shape[1]}-d but the MLP's hidden "
                            f"layer is {mlp.cfg.d_hidden}-d; re-run harvest_activations.py --run-dir {paths.root}")
    if data["inputs"].shape[1] != mlp.task.n_inputs:      # (robustness) inputs of another task than the MLP's
        raise PipelineError(f"{paths.activations}: inputs of {data['inputs'].shape[1]} integers, but the MLP solves the "
                            f"task of L = {mlp.task.slots} ({mlp.task.n_inputs} integers); re-run harvest_activations.py "
                            f"--run-dir {paths.root}")
    record = data[provenance.KEY]
    provenance.require_made_from(paths.activations, record, "mlp", paths.mlp, mlp.provenance["digest"],
                                 f"run harvest_activations.py --run-dir {paths.root} first")
    # what the SAE (and its training checkpoints) are made from
    data["made_from"] = {"activations": provenance.entry(paths.activations, record["digest"], paths.root),
                         "mlp": provenance.entry(paths.mlp, mlp.provenance["digest"], paths.root)}
    return data, mlp
