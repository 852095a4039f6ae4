"""The task, its symmetry, and the Excel format round trip."""
import openpyxl
import pytest
import torch

from dataset import data_generator as dg
from dataset import task
from dataset.data_loader import load_excel, write_excel


def test_reference_example():
    x = torch.tensor([[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]])
    gt = task.ground_truth(x)
    assert (int(gt["a"]), int(gt["b"]), int(gt["a-b"]), int(gt["target"])) == (1, 9, -8, 8)
    assert (int(gt["p1"]), int(gt["p2"])) == (3, 1)
    assert [int(gt[f"c2[{i}]"]) for i in range(4)] == [2, 9, 4, 7]
    assert int(task.target(x)) == 8


def test_target_matches_definition_elementwise():
    x = task.sample_inputs(500, seed=3)
    for row, t in zip(x.tolist(), task.target(x).tolist()):
        assert t == abs(row[0:4][row[4]] - row[5:9][row[9]])


def test_sampling_is_seeded_and_in_range():
    x = task.sample_inputs(2000, seed=1)
    assert x.shape == (2000, 10) and x.dtype == torch.long
    assert torch.equal(x, task.sample_inputs(2000, seed=1))
    assert not torch.equal(x, task.sample_inputs(2000, seed=2))
    digits = x[:, [0, 1, 2, 3, 5, 6, 7, 8]]
    assert digits.min() == 0 and digits.max() == 9
    assert x[:, [4, 9]].min() == 0 and x[:, [4, 9]].max() == 3


def test_seed_streams_differ():
    seeds = {task.stream_seed(0, s) for s in task.SEED_STREAMS}
    assert len(seeds) == len(task.SEED_STREAMS)


def test_augment_preserves_labels_and_pointed_values():
    x = task.sample_inputs(3000, seed=4)
    xa = task.augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(task.target(xa), task.target(x))
    a, b = task.pointed_values(x)
    a2, b2 = task.pointed_values(xa)
    same = (a2 == a) & (b2 == b)
    swapped = (a2 == b) & (b2 == a)
    assert bool((same | swapped).all())
    # each column keeps its multiset of digits (up to the swap)
    assert torch.equal(torch.sort(torch.cat([x[:, :4], x[:, 5:9]], 1), 1).values,
                       torch.sort(torch.cat([xa[:, :4], xa[:, 5:9]], 1), 1).values)
    assert (xa != x).any(dim=1).float().mean() > 0.9  # it really moves things


def test_excel_round_trip_and_cell_format(tmp_path):
    x = task.sample_inputs(50, seed=5)
    path = tmp_path / "d.xlsx"
    write_excel(path, x, task.target(x))
    x2, y2 = load_excel(path)
    assert torch.equal(x2, x) and torch.equal(y2, task.target(x).float())
    sheet = openpyxl.load_workbook(path).worksheets[0]
    assert [c.value for c in sheet[1]] == ["input_list", "output_list"]
    assert sheet["A2"].value == str(x[0].tolist()) and sheet["A2"].value.startswith("[")
    assert sheet["B2"].value == f"[{int(task.target(x[:1]))}]"


@pytest.mark.parametrize("cell,message", [
    ("[8, 9, 5, 1, 3, 2, 9, 4, 7]", "expected 10 integers"),
    ("[8, 9, 5, 1, 7, 2, 9, 4, 7, 1]", "pointer in 0..3"),
    ("[8, 9, 5, 1, 3, 12, 9, 4, 7, 1]", "digit in 0..9"),
    ("8, 9, 5, 1, 3, 2, 9, 4, 7, 1", "a list of 10 integers"),
])
def test_bad_input_cell_names_file_row_and_problem(tmp_path, cell, message):
    from common.io import PipelineError
    path = tmp_path / "bad.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["input_list", "output_list"])
    sheet.append(["[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]", "[8]"])
    sheet.append([cell, "[8]"])
    book.save(path)
    with pytest.raises(PipelineError) as e:
        load_excel(path)
    assert str(path) in str(e.value) and "row 3" in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_generator_writes_three_splits(tmp_path):
    from common.paths import RunPaths
    dg.main(dg.parse_args(["--run-dir", str(tmp_path), "--n-train", "30", "--n-val", "7", "--n-test", "9", "--quiet"]))
    paths = RunPaths(tmp_path)
    sizes = {s: len(load_excel(paths.split_xlsx(s))[0]) for s in ("train", "val", "test")}
    assert sizes == {"train": 30, "val": 7, "test": 9}
    assert not torch.equal(load_excel(paths.val_xlsx)[0][:7], load_excel(paths.test_xlsx)[0][:7])


def test_distinct_seed_streams_draw_different_inputs():
    streams = [(seed, s) for seed in (0, 1) for s in task.SEED_STREAMS]
    keys = {(seed, s): tuple(task.input_keys(task.sample_inputs(50, seed=task.stream_seed(seed, s))).tolist())
            for seed, s in streams}
    assert len(set(keys.values())) == len(streams)                     # no two streams share their inputs


def test_changing_one_split_size_leaves_the_other_splits_rows_unchanged(tmp_path):
    from common.paths import RunPaths
    rows = {}
    for n_val in (7, 40):
        run = tmp_path / f"val{n_val}"
        dg.main(dg.parse_args(["--run-dir", str(run), "--n-train", "30", "--n-val", str(n_val), "--n-test", "9", "--quiet"]))
        rows[n_val] = {s: load_excel(RunPaths(run).split_xlsx(s)) for s in ("train", "val", "test")}
    for split in ("train", "test"):
        assert torch.equal(rows[7][split][0], rows[40][split][0]) and torch.equal(rows[7][split][1], rows[40][split][1])
    assert len(rows[7]["val"][0]) == 7 and len(rows[40]["val"][0]) == 40


@pytest.mark.parametrize("values,problem", [
    ([8, 9, 5, 1, 3, 2, 9, 4, 7, 0], None),
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], None),
    ([9, 9, 9, 9, 3, 9, 9, 9, 9, 3], None),
    ([8, 9, 5, 1, 3, 2, 9, 4, 7], "input_list: expected 10 integers, got 9"),
    ([8, 9, 5, 1, 3, 2, 9, 4, 7, 0, 1], "input_list: expected 10 integers, got 11"),
    ([8, 9, 5, 1, 4, 2, 9, 4, 7, 0], "input_list[4] = 4: expected a pointer in 0..3"),
    ([8, 9, 5, 1, 3, 2, 9, 4, 7, -1], "input_list[9] = -1: expected a pointer in 0..3"),
    ([10, 9, 5, 1, 3, 2, 9, 4, 7, 0], "input_list[0] = 10: expected a digit in 0..9"),
    ([8, 9, 5, 1, 3, 2, 9, 4, -7, 0], "input_list[8] = -7: expected a digit in 0..9"),
    ([8, 9, 5, 1, 9, 2, 9, 4, 7, 12], "input_list[4] = 9: expected a pointer in 0..3"),   # the first bad value
])
def test_input_problem_names_the_first_bad_value(values, problem):
    assert task.DEFAULT_TASK.input_problem(values) == problem
    if problem is not None:
        assert task.DEFAULT_TASK.input_problem(values, name="x").startswith("x")    # the caller's name for the list


def test_every_sampled_input_is_valid():
    assert all(task.DEFAULT_TASK.input_problem(v) is None for v in task.sample_inputs(500, seed=4).tolist())
