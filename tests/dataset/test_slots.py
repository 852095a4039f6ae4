"""The task at another L than the default 4: its layout, validation, sampling, keys and rule, the
generator's --slots, bad L refused, and the Excel format at that width."""
import subprocess
import sys

import pytest
import torch

import run_pipeline
from dataset import data_generator as dg
from dataset.data_loader import load_excel, write_excel
from dataset.task import (MAX_SLOTS, REFERENCE_INPUTS, Task, augment, ground_truth, input_keys, target, task_of)
from tests.conftest import ROOT


@pytest.mark.parametrize("L", [3, 5])
def test_layout(L):
    t = Task(L)
    assert t.n_inputs == 2 * L + 2 and (t.p1, t.p2) == (L, 2 * L + 1)
    assert list(range(t.n_inputs))[t.col1] == list(range(L)) and list(range(t.n_inputs))[t.col2] == list(range(L + 1, 2 * L + 1))
    assert t.digit_positions == [i for i in range(2 * L + 2) if i not in (L, 2 * L + 1)]
    assert t.digit_variables == tuple(f"c1[{i}]" for i in range(L)) + tuple(f"c2[{i}]" for i in range(L))
    assert t.value_limits.tolist() == [10] * L + [L] + [10] * L + [L]
    assert t.n_cells == L * L * 100


@pytest.mark.parametrize("L", [3, 5])
def test_sampling_is_seeded_uniform_and_in_range(L):
    t = Task(L)
    x = t.sample_inputs(4000, seed=1)
    assert x.shape == (4000, 2 * L + 2) and torch.equal(x, t.sample_inputs(4000, seed=1))
    assert sorted(x[:, [L, 2 * L + 1]].unique().tolist()) == list(range(L))          # every pointer value, no other
    assert sorted(x[:, t.digit_positions].unique().tolist()) == list(range(10))
    assert all(t.input_problem(v) is None for v in x[:300].tolist())
    assert task_of(x) == t


@pytest.mark.parametrize("L", [3, 5])
def test_rule_and_ground_truth_follow_the_definition(L):
    x = Task(L).sample_inputs(500, seed=3)
    gt = ground_truth(x)
    for i, row in enumerate(x.tolist()):
        col1, p1, col2, p2 = row[:L], row[L], row[L + 1:2 * L + 1], row[2 * L + 1]
        assert (gt["a"][i], gt["b"][i], gt["p1"][i], gt["p2"][i]) == (col1[p1], col2[p2], p1, p2)
        assert int(target(x[i:i + 1])) == abs(col1[p1] - col2[p2])
        assert [int(gt[f"c2[{j}]"][i]) for j in range(L)] == col2
    assert f"c1[{L}]" not in gt and f"c1[{L - 1}]" in gt


@pytest.mark.parametrize("L", [3, 5])
def test_augment_keeps_targets_and_moves_inputs(L):
    x = Task(L).sample_inputs(2000, seed=4)
    xa = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(target(xa), target(x)) and (xa != x).any(1).float().mean() > 0.9
    assert all(Task(L).input_problem(v) is None for v in xa[:300].tolist())


def test_input_keys_are_exact_up_to_L_8():
    for L in (3, 5, 8):
        t = Task(L)
        x = t.sample_inputs(3000, seed=2)
        x = torch.cat([x, x[:50]])                                                     # 50 repeated rows
        keys = input_keys(x)
        assert len(keys.unique()) == len(x.unique(dim=0)) == 3000
        top = torch.tensor([[9] * L + [L - 1] + [9] * L + [L - 1]])
        assert int(input_keys(top)) == int("".join(map(str, top[0].tolist())))            # no int64 overflow


@pytest.mark.parametrize("L", [9, MAX_SLOTS])
def test_input_keys_beyond_L_8_tell_inputs_apart(L):
    t = Task(L)
    x = t.sample_inputs(20000, seed=2)
    x = torch.cat([x, x[:50]])
    keys = input_keys(x)
    assert torch.equal(keys[-50:], keys[:50]) and torch.equal(keys, input_keys(x.clone()))   # equal inputs, equal keys
    assert len(keys.unique()) == len(x.unique(dim=0)) == 20000
    one = x[:1].repeat(2 * L + 2, 1)                                                   # one value changed per place:
    one[range(2 * L + 2), range(2 * L + 2)] = (one.diagonal() + 1) % t.value_limits    # every place enters the key
    assert (input_keys(one) != input_keys(x[:1])).all() and len(input_keys(one).unique()) == 2 * L + 2
    if L > 10:                         # a pointer of two decimal digits must not spill into its neighbour's place
        u, v = x[:1].clone(), x[:1].clone()
        u[0, L - 1], u[0, L], v[0, L - 1], v[0, L] = 1, 0, 0, 10                # 1*10 + 0 == 0*10 + 10 in base 10
        assert input_keys(u) != input_keys(v)


def test_the_stream_never_draws_a_held_out_input_at_a_large_L():
    from mlp.mlp_definition import MLPConfig, PointerMLP
    from sae.sources import StreamSource
    from dataset.task import stream_seed
    src = StreamSource(PointerMLP(MLPConfig(d_mlp=8, d_hidden=8, slots=MAX_SLOTS)), seed=3, n_eval=500)
    src.generator = torch.Generator().manual_seed(stream_seed(3, "sae_eval"))          # replays the held-out draw
    x = src.inputs(500)
    assert x.shape == (500, 2 * MAX_SLOTS + 2) and (x != src.eval_inputs).any(1).all()
    held = {tuple(r) for r in src.eval_inputs.tolist()}
    assert not any(tuple(r) in held for r in x.tolist())


def test_input_problem_at_another_L():
    t = Task(3)
    assert t.input_problem([1, 2, 3, 2, 4, 5, 6, 0]) is None
    assert t.input_problem([1, 2, 3, 3, 4, 5, 6, 0]) == "input_list[3] = 3: expected a pointer in 0..2"
    assert t.input_problem(list(REFERENCE_INPUTS[0])) == "input_list: expected 8 integers, got 10"


@pytest.mark.parametrize("L", [3, 4, 5])
def test_reference_inputs_fit_the_task(L):
    refs = Task(L).reference_inputs
    assert len(refs) == 5 and all(Task(L).input_problem(r) is None for r in refs)
    if L == 4:
        assert refs == REFERENCE_INPUTS


@pytest.mark.parametrize("bad", [1, 0, -1, MAX_SLOTS + 1, True, 4.0])
def test_bad_slots_are_refused(bad):
    with pytest.raises(ValueError, match=f"expected 2..{MAX_SLOTS} slots per column [(]{MAX_SLOTS}: the largest whose "
                                         "concept grammar fits in memory[)]"):
        Task(bad)


@pytest.mark.parametrize("flag", ["1", str(MAX_SLOTS + 1), "x"])
def test_generator_refuses_bad_slots_in_one_line(flag, tmp_path):
    r = subprocess.run([sys.executable, "dataset/data_generator.py", "--run-dir", str(tmp_path / "run"), "--slots", flag],
                       cwd=ROOT, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("error: argument --slots"), r.stderr
    assert f"2..{MAX_SLOTS}" in r.stderr and not (tmp_path / "run").exists()


def test_pipeline_passes_slots_to_the_generator_only(capsys):
    args = run_pipeline.parse_args(["--slots", "5"])
    assert args.slots == 5
    from common.pipeline import STAGES, stage_argv
    argvs = {s.key: stage_argv(s, "r", 0, args.slots) for s in STAGES}
    assert argvs["data"][-2:] == ["--slots", "5"] and all("--slots" not in a for k, a in argvs.items() if k != "data")
    with pytest.raises(SystemExit) as e:               # a later stage reads L from the run: a flag could disagree
        run_pipeline.parse_args(["--slots", "5", "--from", "mlp"])
    assert e.value.code == 2 and "the task is chosen by the data stage" in capsys.readouterr().err


def test_generator_writes_the_task_of_its_slots(tmp_path):
    from common.paths import RunPaths
    dg.main(dg.parse_args(["--run-dir", str(tmp_path), "--slots", "5", "--n-train", "40", "--n-val", "9",
                           "--n-test", "9", "--quiet"]))
    x, y = load_excel(RunPaths(tmp_path).train_xlsx)
    assert x.shape == (40, 12) and torch.equal(target(x).float(), y)
    assert torch.equal(x, Task(5).sample_inputs(40, seed=0))                      # the train stream, as at L = 4


def test_excel_at_another_L_round_trips_and_a_mismatched_task_is_refused(tmp_path):
    from common.io import PipelineError
    x = Task(3).sample_inputs(30, seed=5)
    path = tmp_path / "d.xlsx"
    write_excel(path, x, target(x))
    x2, y2 = load_excel(path)
    assert torch.equal(x2, x) and torch.equal(y2, target(x).float())
    assert torch.equal(load_excel(path, Task(3))[0], x)
    with pytest.raises(PipelineError, match=r"row 2: input_list: expected 10 integers, got 8"):
        load_excel(path, Task(4))                                                  # e.g. an L = 4 MLP's --evaluate
    mixed = tmp_path / "mixed.xlsx"
    x4 = Task(4).sample_inputs(2, seed=1)
    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["input_list", "output_list"])
    for row, t in ((x[0], target(x[:1])), (x4[0], target(x4[:1]))):
        sheet.append([str(row.tolist()), f"[{int(t)}]"])
    book.save(mixed)
    with pytest.raises(PipelineError, match=r"row 3: input_list: expected 8 integers, got 10"):
        load_excel(mixed)                                                          # the first row says L = 3


def test_training_rows_scale_with_the_pointer_pairs(tmp_path):
    from common.paths import RunPaths
    from dataset.slots import default_n_train
    assert default_n_train(4) == 8000 and default_n_train(8) == 32000          # the seed's recipe at L = 4
    dg.main(dg.parse_args(["--run-dir", str(tmp_path), "--slots", "3", "--n-val", "2", "--n-test", "2", "--quiet"]))
    assert load_excel(RunPaths(tmp_path).train_xlsx)[0].shape == (4500, 8)
