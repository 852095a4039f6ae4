"""Read and write the pipeline's Excel format, refusing anything else with a one-line reason.

Format (as in the reference project): a sheet whose header row is `input_list`, `output_list`;
each data cell is a Python-style list as text, e.g. "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]" and "[8]".

Whatever the file holds, `load_excel` either returns the samples or raises `PipelineError` with one
line naming the file, the row (as Excel numbers it: the header is row 1) and the problem; no other
exception escapes it (a damaged zip or sheet XML included).
"""
import re
from pathlib import Path

import openpyxl
import torch

from common.io import PipelineError, atomic_path
from dataset.task import N_INPUTS, input_problem, target

COLUMNS = ("input_list", "output_list")
# 1e6 rows of 10 ints hold ~150 MB as Python lists while parsing; openpyxl reads ~10-25k rows/s
# on this machine, so the limit is about time more than memory (Excel's own sheet limit is 1,048,576)
MAX_ROWS = 1_000_000
# ASCII digits only (`\d` would also take e.g. Arabic-Indic digits); signs so "-1" gets a range message
_LIST = re.compile(r"^\s*\[\s*(-?[0-9]+(?:\s*,\s*-?[0-9]+)*)?\s*\]\s*$")
_MAX_DIGITS = 12  # a longer number is out of every range here (and int() refuses > 4300 digits)
EXAMPLE_INPUT = "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]"
_SUFFIX_HINT = {".xls": "an old-format .xls file; open it in Excel and save it as .xlsx",
                ".csv": "a CSV file; open it in Excel and save it as .xlsx",
                ".ods": "an OpenDocument sheet; save it as .xlsx"}


def _show(value) -> str:
    if value is None:
        return "an empty cell"
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _parse_list(cell, where: str, expected: str) -> list[int]:
    if isinstance(cell, str) and cell.startswith("="):
        raise PipelineError(f"{where}: holds a formula {_show(cell)}; expected {expected} as plain text "
                            "(in Excel: copy, then paste as values)")
    if not isinstance(cell, str):
        raise PipelineError(f"{where}: expected {expected} as text, got {_show(cell)}")
    m = _LIST.match(cell)
    if not m:
        raise PipelineError(f"{where}: expected {expected}, got {_show(cell)}")
    if not m.group(1):
        return []
    tokens = m.group(1).split(",")
    for tok in tokens:
        if len(tok.strip().lstrip("-")) > _MAX_DIGITS:
            raise PipelineError(f"{where}: number {_show(tok.strip())} is far out of range; expected {expected}")
    return [int(v) for v in tokens]


def _check_row(where: str, x: list[int], y: list[int]) -> None:
    """Everything about one row but its target, which `_checked_tensors` checks for many rows at once."""
    problem = input_problem(x)
    if problem:
        raise PipelineError(f"{where}: {problem}")
    if len(y) != 1:
        raise PipelineError(f"{where}: output_list: expected exactly 1 integer, got {len(y)}")


def _checked_tensors(path: Path, xs: list[list[int]], ys: list[int], rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(x LongTensor [n, 10], y LongTensor [n]) of the rows read so far, refusing the first whose output
    disagrees with the task's rule. Vectorised: the rule applied to each row as a tensor would add about
    40% to a row's parse time."""
    x = torch.tensor(xs, dtype=torch.long).reshape(-1, N_INPUTS)      # [n, 10]
    y = torch.tensor(ys, dtype=torch.long)                             # [n]
    expected = target(x)                                               # [n]
    wrong = (expected != y).nonzero()
    if len(wrong):
        i = int(wrong[0])
        raise PipelineError(f"{path}: row {rows[i]}: output_list [{ys[i]}] disagrees with the inputs: "
                            f"expected [{int(expected[i])}] = |col1[p1] - col2[p2]|")
    return x, y


def _check_header(path: Path, header) -> None:
    header = list(header or [])
    while header and header[-1] is None:  # trailing empty cells are not columns
        header.pop()
    if tuple(header) == COLUMNS:
        return
    missing = [c for c in COLUMNS if c not in header]
    extra = [h for h in header if h not in COLUMNS]
    detail = "; ".join(s for s in (f"missing {missing}" if missing else "", f"unexpected {extra}" if extra else "") if s)
    if not header:
        detail = "row 1 is empty; the header must be the first row"
    shown = [h if isinstance(h, str) and len(h) <= 40 else _show(h) for h in header]
    raise PipelineError(f"{path}: row 1: expected exactly the columns {list(COLUMNS)}, got {shown} "
                        f"({detail or 'wrong order'})")


def load_excel(path) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse and validate an Excel file of the task: returns (x LongTensor[n, 10], y FloatTensor[n]).

    Any problem raises PipelineError naming the file, the row as Excel numbers it, and what was
    expected: not an .xlsx / damaged file, missing/renamed/extra columns, empty sheet, header only,
    a cell that is not a list of 10 integers as text (numbers, formulas, floats, NaN, ...), a digit
    outside 0..9, a pointer outside 0..3, a target that disagrees with the inputs, more than
    MAX_ROWS rows (refused up front when the sheet declares its size).
    """
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: no such file (a run's own data is made by dataset/data_generator.py)")
    if path.is_dir():
        raise PipelineError(f"{path}: is a folder, expected an .xlsx file")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as e:  # BadZipFile, InvalidFileException, KeyError of a zip that is no workbook, ...
        hint = _SUFFIX_HINT.get(path.suffix.lower(), "expected an .xlsx file saved by Excel or this pipeline")
        raise PipelineError(f"{path}: not a readable Excel .xlsx file ({type(e).__name__}); {hint}") from None
    r = 1
    xs, ys, rows_read = [], [], []  # rows_read: the Excel row number of each sample
    try:
        if not book.worksheets:
            raise PipelineError(f"{path}: the workbook has no worksheet; expected one with columns {list(COLUMNS)}")
        sheet = book.worksheets[0]
        declared = sheet.max_row  # from the sheet's <dimension> tag, when the writer put one there
        if declared is not None and declared - 1 > MAX_ROWS:
            raise PipelineError(f"{path}: {declared - 1:,} data rows; the limit is {MAX_ROWS:,}, split the file")
        # read every cell, not only the declared range: a wrong <dimension> would hide rows or columns
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        if header is None:
            raise PipelineError(f"{path}: the sheet is empty; expected a header row {list(COLUMNS)} and data rows")
        _check_header(path, header)
        for r, row in enumerate(rows, start=2):
            row = list(row) + [None] * (2 - len(row))
            if all(v is None for v in row):
                continue  # blank rows (e.g. left by a deletion in Excel) carry nothing
            if any(v is not None for v in row[2:]):
                raise PipelineError(f"{path}: row {r}: has cells beyond the 2 columns {list(COLUMNS)}")
            where = f"{path}: row {r}"
            x = _parse_list(row[0], f"{where}: input_list", f"a list of {N_INPUTS} integers like {EXAMPLE_INPUT!r}")
            y = _parse_list(row[1], f"{where}: output_list", "a one-integer list like '[8]'")
            _check_row(where, x, y)
            xs.append(x)
            ys.append(y[0])
            rows_read.append(r)
            if len(xs) > MAX_ROWS:
                raise PipelineError(f"{path}: more than {MAX_ROWS:,} data rows; split the file")
    except PipelineError:
        _checked_tensors(path, xs, ys, rows_read)  # a wrong target above this problem is the file's first one
        raise
    except Exception as e:  # damaged sheet XML, bad CRC, truncated member, ... found while reading
        _checked_tensors(path, xs, ys, rows_read)
        msg = str(e).strip().splitlines()[0][:100] if str(e).strip() else ""
        raise PipelineError(f"{path}: damaged Excel file, unreadable after row {r} ({type(e).__name__}"
                            f"{': ' + msg if msg else ''}); re-save it from Excel or re-make it") from None
    finally:
        book.close()
    if not xs:
        raise PipelineError(f"{path}: no data rows below the header; expected at least one sample")
    x, y = _checked_tensors(path, xs, ys, rows_read)  # [n, 10], [n]
    return x, y.float()


def write_excel(path, x: torch.Tensor, y: torch.Tensor) -> None:
    """Write samples in the pipeline's Excel format, atomically."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(list(COLUMNS))
    for xi, yi in zip(x.tolist(), torch.as_tensor(y).round().long().tolist()):
        sheet.append([str(xi), f"[{yi}]"])
    with atomic_path(path) as tmp:
        book.save(tmp)
