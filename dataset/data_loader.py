"""Read and write the pipeline's Excel format, refusing anything else with a one-line reason.

Format (as in the reference project): a sheet whose header row is `input_list`, `output_list`;
each data cell is a Python-style list as text, e.g. "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]" and "[8]".
A task of L slots per column has 2L + 2 integers per input list (10 at the default L = 4); the file's
first row says which L it holds (or the caller does: `load_excel(path, task)`), and every row must agree.

Whatever the file holds, `load_excel` either returns the samples or raises `PipelineError` with one
line naming the file, the row (as Excel numbers it: the header is row 1) and the problem; no other
exception escapes it (a damaged zip or sheet XML included).
"""
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import python_calamine
import torch

from common.io import PipelineError, atomic_path
from common.validate import shown
from dataset.task import DEFAULT_TASK, MAX_SLOTS, MIN_SLOTS, Task, slots_problem, target

COLUMNS = ("input_list", "output_list")
# 1e6 rows of 10 ints hold ~150 MB as Python lists while parsing (Excel's own sheet limit is 1,048,576)
MAX_ROWS = 1_000_000
# ASCII digits only (`\d` would also take e.g. Arabic-Indic digits); signs so "-1" gets a range message
_LIST = re.compile(r"^\s*\[\s*(-?[0-9]+(?:\s*,\s*-?[0-9]+)*)?\s*\]\s*$")
_MAX_DIGITS = 12  # a longer number is out of every range here (and int() refuses > 4300 digits)
EXAMPLE_INPUT = "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]"
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")          # <f>, <f t="shared" .../>, <x:f>: not <filter>, <formula1>
# an error cell (t="e") and a NaN / infinite number, as they appear in sheet XML
_HIDDEN_BY_CALAMINE = (b't="e"', b">nan<", b">inf<", b">-inf<", b">NaN<", b">INF<", b">-INF<")
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="[A-Z]+([0-9]+)(?::[A-Z]+([0-9]+))?"')
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_SUFFIX_HINT = {".xls": "an old-format .xls file; open it in Excel and save it as .xlsx",
                ".csv": "a CSV file; open it in Excel and save it as .xlsx",
                ".ods": "an OpenDocument sheet; save it as .xlsx"}


def _show(value) -> str:
    return "an empty cell" if value is None else shown(value)


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


def _task_of_row(where: str, x: list[int]) -> Task:
    """The task a file's first row is an input of (its width: 2L + 2 integers)."""
    if len(x) % 2 or slots_problem((len(x) - 2) // 2):
        raise PipelineError(f"{where}: input_list: expected {DEFAULT_TASK.n_inputs} integers, got {len(x)} (or 2L + 2 "
                            f"for a task of L = {MIN_SLOTS}..{MAX_SLOTS} slots per column)")
    return Task((len(x) - 2) // 2)


def _check_row(where: str, x: list[int], y: list[int], task: Task) -> None:
    """Everything about one row but its target, which `_checked_tensors` checks for many rows at once."""
    problem = task.input_problem(x)
    if problem:
        raise PipelineError(f"{where}: {problem}")
    if len(y) != 1:
        raise PipelineError(f"{where}: output_list: expected exactly 1 integer, got {len(y)}")


def _checked_tensors(path: Path, xs: list[list[int]], ys: list[int], rows: list[int],
                     task: Task | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x LongTensor [n, 2L+2], y LongTensor [n]) of the rows read so far, refusing the first whose output
    disagrees with the task's rule. Vectorised: the rule applied to each row as a tensor would add about
    40% to a row's parse time."""
    if task is None:   # no row read yet
        return torch.zeros(0, DEFAULT_TASK.n_inputs, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    x = torch.tensor(xs, dtype=torch.long).reshape(-1, task.n_inputs)  # [n, 2L+2]
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
    detail = "; ".join(s for s in (f"missing {missing}" if missing else "",
                                   f"unexpected {shown(extra)}" if extra else "") if s)
    if not header:
        detail = "row 1 is empty; the header must be the first row"
    raise PipelineError(f"{path}: row 1: expected exactly the columns {list(COLUMNS)}, got {shown(header)} "
                        f"({detail or 'wrong order'})")


def _first_worksheet_member(z: zipfile.ZipFile) -> str | None:
    """The zip member of the workbook's first worksheet (chartsheets skipped), from workbook.xml
    and its relationships; None when there is no worksheet."""
    book = ET.fromstring(z.read("xl/workbook.xml"))
    rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels}
    for sheet in book.iter(f"{{{_MAIN_NS}}}sheet"):
        member = targets.get(sheet.get(f"{{{_REL_NS}}}id"), "")
        member = member.lstrip("/") if member.startswith("/") else posixpath.normpath(posixpath.join("xl", member))
        if "worksheets/" in member:
            return member
    return None


def _scan_sheets(path: Path) -> tuple[int | None, bool]:
    """(rows declared by the first worksheet's <dimension>, whether a worksheet holds a cell that
    calamine cannot show). Calamine gives a formula's cached value (or a blank), never the formula,
    and a blank for an error value (#N/A) or a NaN/inf number; such cells are found here, in the
    sheet XML itself, and that file is then read with openpyxl, which shows them to be refused by row."""
    with zipfile.ZipFile(path) as z:
        first = _first_worksheet_member(z)
        declared, hidden = None, False
        for name in z.namelist():
            if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                continue
            data = z.read(name)
            if name == first:
                m = _DIMENSION.search(data, 0, 4096)
                declared = int(m.group(2) or m.group(1)) if m else None
            # memchr-speed finds clear the usual sheet; the formula regex runs only where "<f" or ":f" occurs
            if not hidden and (b"<f" in data or b":f" in data):
                hidden = _FORMULA.search(data) is not None
            hidden = hidden or any(token in data for token in _HIDDEN_BY_CALAMINE)
    return declared, hidden


def _calamine_rows(path: Path) -> list[list] | None:
    """Every row of the first worksheet from cell A1 as lists (blank cells ""), or None if the
    workbook has no worksheet."""
    with python_calamine.CalamineWorkbook.from_path(str(path)) as book:
        for i, meta in enumerate(book.sheets_metadata):
            if meta.typ == python_calamine.SheetTypeEnum.WorkSheet:
                return book.get_sheet_by_index(i).to_python(skip_empty_area=False)
    return None


def _cell(v):
    """A calamine cell as openpyxl gives it: blank -> None, an integral number -> int."""
    if v == "":
        return None
    if type(v) is float and v.is_integer():
        return int(v)
    return v


def _canonical_digits(cells: list[str], n_values: int) -> np.ndarray | None:
    """The digits [n, n_values] of cells all written exactly as str(list) writes single digits
    ("[8, 9, 5]"), checked in one vectorised comparison against that template; else None."""
    template = str([0] * n_values).encode("ascii")                         # b"[0, 0, ..., 0]"
    width = len(template) + 1                                               # + the joining line break
    joined = ("\n".join(cells) + "\n").encode("utf-8")
    if len(joined) != width * len(cells):
        return None
    table = np.frombuffer(joined, dtype=np.uint8).reshape(len(cells), width)  # [n, width]
    expected = np.frombuffer(template + b"\n", dtype=np.uint8)             # [width]
    slots = expected == ord("0")                                            # where the digits go
    if not (table[:, ~slots] == expected[~slots]).all():
        return None
    digits = table[:, slots] - np.uint8(ord("0"))                          # wraps below '0' to > 9
    return digits if (digits <= 9).all() else None


def _fast_parse(data: list[list], task: Task | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The usual file in a few vectorised steps: exactly two columns of text as this pipeline (and
    the reference project) writes it, no blank row. Returns (x [n, 2L+2], y [n]) when every row is
    valid (of `task`, or of the task the first row's width says), else None: then the row-by-row
    check accepts the other spellings the format allows (spaces, ...) or names the first bad row."""
    n = len(data)
    if not 0 < n <= MAX_ROWS or any(len(r) != 2 for r in data):
        return None
    col_x, col_y = [r[0] for r in data], [r[1] for r in data]
    if {type(v) for v in col_x} | {type(v) for v in col_y} != {str}:
        return None
    if task is None:
        width = col_x[0].count(",") + 1
        if width % 2 or slots_problem((width - 2) // 2):
            return None
        task = Task((width - 2) // 2)
    x, y = _canonical_digits(col_x, task.n_inputs), _canonical_digits(col_y, 1)
    if x is None or y is None:
        return None
    x, y = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y[:, 0].astype(np.int64))   # [n, 2L+2], [n]
    if (x[:, task.pointer_positions] >= task.slots).any() or not torch.equal(target(x), y):
        return None
    return x, y


def load_excel(path, task: Task | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Parse and validate an Excel file of the task: returns (x LongTensor[n, 2L+2], y FloatTensor[n]).
    With `task` every row must be one of its inputs; without, the first row's width says the task
    (2L + 2 integers: L slots per column) and every later row must agree.

    Any problem raises PipelineError naming the file, the row as Excel numbers it, and what was
    expected: not an .xlsx / damaged file, missing/renamed/extra columns, empty sheet, header only,
    a cell that is not a list of 2L + 2 integers as text (numbers, formulas, floats, NaN, ...), a digit
    outside 0..9, a pointer outside 0..L-1, a target that disagrees with the inputs, more than
    MAX_ROWS rows (refused up front when the sheet declares its size).

    Read with calamine (Rust; 200,000 rows in ~2 s where openpyxl took ~20 s). A sheet holding a
    cell calamine cannot show (formula, error value, NaN) is read with openpyxl instead: such a
    file is always refused, and openpyxl names the cell's row and content.
    """
    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{path}: no such file (a run's own data is made by dataset/data_generator.py)")
    if path.is_dir():
        raise PipelineError(f"{path}: is a folder, expected an .xlsx file")
    try:
        with zipfile.ZipFile(path) as z:
            z.getinfo("xl/workbook.xml")
            _first_worksheet_member(z)
    except Exception as e:  # BadZipFile, KeyError of a zip that is no workbook, ParseError, ...
        hint = _SUFFIX_HINT.get(path.suffix.lower(), "expected an .xlsx file saved by Excel or this pipeline")
        raise PipelineError(f"{path}: not a readable Excel .xlsx file ({type(e).__name__}); {hint}") from None
    r = 1
    xs, ys, rows_read = [], [], []  # rows_read: the Excel row number of each sample
    book = None
    try:
        declared, hidden = _scan_sheets(path)  # declared: from the sheet's <dimension> tag, when the writer put one
        if declared is not None and declared - 1 > MAX_ROWS:
            raise PipelineError(f"{path}: {declared - 1:,} data rows; the limit is {MAX_ROWS:,}, split the file")
        table = rows = None
        if hidden:
            book = openpyxl.load_workbook(path, read_only=True, data_only=False)
            if book.worksheets:
                sheet = book.worksheets[0]
                # read every cell, not only the declared range: a wrong <dimension> would hide rows or columns
                sheet.reset_dimensions()
                rows = sheet.iter_rows(values_only=True)
        else:
            table = _calamine_rows(path)  # every cell from A1, whatever <dimension> says
            if table is not None:
                rows = ([_cell(v) for v in row] for row in table)
        if rows is None:
            raise PipelineError(f"{path}: the Excel workbook has no worksheet; expected one with columns {list(COLUMNS)}")
        header = next(rows, None)
        if header is None:
            raise PipelineError(f"{path}: the sheet is empty; expected a header row {list(COLUMNS)} and data rows")
        _check_header(path, header)
        if table is not None:
            fast = _fast_parse(table[1:], task)
            if fast is not None:
                return fast[0], fast[1].float()
        for r, row in enumerate(rows, start=2):
            row = list(row) + [None] * (2 - len(row))
            if all(v is None for v in row):
                continue  # blank rows (e.g. left by a deletion in Excel) carry nothing
            if any(v is not None for v in row[2:]):
                raise PipelineError(f"{path}: row {r}: has cells beyond the 2 columns {list(COLUMNS)}")
            where = f"{path}: row {r}"
            n_inputs = (task or DEFAULT_TASK).n_inputs
            example = EXAMPLE_INPUT if task is None else str(list(task.reference_inputs[0]))
            x = _parse_list(row[0], f"{where}: input_list", f"a list of {n_inputs} integers like {example!r}")
            y = _parse_list(row[1], f"{where}: output_list", "a one-integer list like '[8]'")
            task = task or _task_of_row(where, x)
            _check_row(where, x, y, task)
            xs.append(x)
            ys.append(y[0])
            rows_read.append(r)
            if len(xs) > MAX_ROWS:
                raise PipelineError(f"{path}: more than {MAX_ROWS:,} data rows; split the file")
    except PipelineError:
        _checked_tensors(path, xs, ys, rows_read, task)  # a wrong target above this problem is the file's first one
        raise
    except Exception as e:  # damaged sheet XML, bad CRC, truncated member, ... found while reading
        _checked_tensors(path, xs, ys, rows_read, task)
        msg = str(e).strip().splitlines()[0][:100] if str(e).strip() else ""
        raise PipelineError(f"{path}: damaged Excel file, unreadable after row {r} ({type(e).__name__}"
                            f"{': ' + msg if msg else ''}); re-save it from Excel or re-make it") from None
    finally:
        if book is not None:
            book.close()
    if not xs:
        raise PipelineError(f"{path}: no data rows below the header; expected at least one sample")
    x, y = _checked_tensors(path, xs, ys, rows_read, task)  # [n, 2L+2], [n]
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
