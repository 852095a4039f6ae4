"""Read and write the pipeline's Excel format, refusing anything else with a one-line reason.

Format (as in the reference project): a sheet whose header row is `input_list`, `output_list`;
each data cell is a Python-style list as text, e.g. "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]" and "[8]".
"""
import re
import zipfile
from pathlib import Path

import torch

from common.io import PipelineError, atomic_path
from dataset.data_generator import N_DIGITS, N_INPUTS, N_SLOTS, P1, P2, target

COLUMNS = ("input_list", "output_list")
MAX_ROWS = 1_000_000  # 1e6 rows of 10 ints parse in about a minute and a few hundred MB
_LIST = re.compile(r"^\s*\[\s*(-?\d+(?:\s*,\s*-?\d+)*)?\s*\]\s*$")
EXAMPLE_INPUT = "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]"


def _show(value) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _parse_list(cell, where: str, expected: str) -> list[int]:
    if not isinstance(cell, str):
        raise PipelineError(f"{where}: expected {expected} as text, got {_show(cell)}")
    m = _LIST.match(cell)
    if not m:
        raise PipelineError(f"{where}: expected {expected}, got {_show(cell)}")
    return [int(v) for v in m.group(1).split(",")] if m.group(1) else []


def load_excel(path) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse and validate an Excel file of the task: returns (x LongTensor[n, 10], y FloatTensor[n]).

    Any problem raises PipelineError naming the file, the row as Excel numbers it, and what was
    expected: missing/extra columns, a cell that is not a list of 10 integers, a digit outside
    0..9, a pointer outside 0..3, a target that disagrees with the inputs, no data rows.
    """
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: no such file; run dataset/data_generator.py to make the data")
    if path.is_dir():
        raise PipelineError(f"{path}: is a folder, expected an .xlsx file")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise PipelineError(f"{path}: not a readable Excel .xlsx file ({type(e).__name__})") from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise PipelineError(f"{path}: the sheet is empty; expected a header row {list(COLUMNS)} and data rows")
        header = [h for h in header]
        while header and header[-1] is None:  # trailing empty cells are not columns
            header.pop()
        if tuple(header) != COLUMNS:
            raise PipelineError(f"{path}: row 1: expected exactly the columns {list(COLUMNS)}, got {header}")
        xs, ys = [], []
        for r, row in enumerate(rows, start=2):
            row = list(row) + [None] * (2 - len(row))
            if all(v is None for v in row):
                continue  # blank rows (e.g. left by a deletion in Excel) carry nothing
            if any(v is not None for v in row[2:]):
                raise PipelineError(f"{path}: row {r}: has cells beyond the 2 columns {list(COLUMNS)}")
            where = f"{path}: row {r}"
            x = _parse_list(row[0], f"{where}: input_list", f"a list of {N_INPUTS} integers like {EXAMPLE_INPUT!r}")
            if len(x) != N_INPUTS:
                raise PipelineError(f"{where}: input_list: expected {N_INPUTS} integers, got {len(x)}")
            for i, v in enumerate(x):
                if i in (P1, P2):
                    if not 0 <= v < N_SLOTS:
                        raise PipelineError(f"{where}: input_list[{i}] = {v}: expected a pointer in 0..{N_SLOTS - 1}")
                elif not 0 <= v < N_DIGITS:
                    raise PipelineError(f"{where}: input_list[{i}] = {v}: expected a digit in 0..{N_DIGITS - 1}")
            y = _parse_list(row[1], f"{where}: output_list", "a one-integer list like '[8]'")
            if len(y) != 1:
                raise PipelineError(f"{where}: output_list: expected exactly 1 integer, got {len(y)}")
            xs.append(x)
            ys.append(y[0])
            if len(xs) > MAX_ROWS:
                raise PipelineError(f"{path}: more than {MAX_ROWS:,} data rows; split the file")
    finally:
        book.close()
    if not xs:
        raise PipelineError(f"{path}: no data rows below the header; expected at least one sample")
    x = torch.tensor(xs, dtype=torch.long)            # [n, 10]
    y = torch.tensor(ys, dtype=torch.long)            # [n]
    bad = (target(x) != y).nonzero()
    if len(bad):
        i = int(bad[0])
        raise PipelineError(f"{path}: row {i + 2}: output_list [{int(y[i])}] disagrees with the inputs: "
                            f"expected [{int(target(x[i:i + 1]))}] = |col1[p1] - col2[p2]|")
    return x, y.float()


def write_excel(path, x: torch.Tensor, y: torch.Tensor) -> None:
    """Write samples in the pipeline's Excel format, atomically."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(list(COLUMNS))
    for xi, yi in zip(x.tolist(), torch.as_tensor(y).round().long().tolist()):
        sheet.append([str(xi), f"[{yi}]"])
    with atomic_path(path) as tmp:
        book.save(tmp)
