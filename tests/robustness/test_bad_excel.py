"""Every way an Excel file handed to the pipeline can be wrong (issue 6, part 1).

Contract: `load_excel` either returns the samples or raises PipelineError whose one-line message
names the file, the row as Excel numbers it (header = row 1) and the problem; never any other
exception. Through a stage script the same file gives "error: ..." as one line on stderr, exit
code 2, no traceback, and leaves every file of the run folder untouched.

Hand-written cases cover the issue's list one by one; a hypothesis test throws generated sheets
(text, ints, floats, NaN, formulas, near-miss lists, blank rows, stray columns) at the loader
and checks it against an independent reading of the format (`_oracle_list`).
"""
import hashlib
import math
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import harvest_activations
import train_mlp
from common.cli import run_main
from common.io import PipelineError
from dataset import data_loader
from dataset.data_loader import load_excel, write_excel
from dataset.task import sample_inputs, target

from tests.conftest import ROOT
from tests.helpers import TINY_SAE_FLAGS

HEADER = ["input_list", "output_list"]
GOOD = "[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]"   # a = 1, b = 9 -> target 8
GOOD_Y = "[8]"


def make_xlsx(path: Path, rows) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(list(row))
    book.save(path)
    return path


def rewrite_member(src: Path, dst: Path, member_prefix: str, edit) -> Path:
    """Copy an .xlsx (a zip) with one member's bytes passed through `edit`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            data = zin.read(name)
            zout.writestr(name, edit(data) if name.startswith(member_prefix) else data)
    return dst


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its size, mtime and content hash."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(path: Path, row: int | None, *words: str) -> str:
    with pytest.raises(PipelineError) as e:
        load_excel(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    if row is not None:
        assert f"row {row}:" in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


# ------------------------------------------------------------------ hand-written cases, one per way
# (name, rows of the sheet, row the message must name or None for a whole-file problem, words it must hold)
SHEET_CASES = [
    ("missing column", [["input_list"], [GOOD]], 1, ["missing ['output_list']"]),
    ("renamed column", [["inputs", "output_list"], [GOOD, GOOD_Y]], 1, ["missing ['input_list']", "unexpected ['inputs']"]),
    ("extra column", [HEADER + ["note"], [GOOD, GOOD_Y, "x"]], 1, ["unexpected ['note']"]),
    ("swapped columns", [HEADER[::-1], [GOOD_Y, GOOD]], 1, ["wrong order"]),
    ("header not in row 1", [[None], HEADER, [GOOD, GOOD_Y]], 1, ["row 1 is empty"]),
    ("stray cell beyond column B", [HEADER, [GOOD, GOOD_Y], [GOOD, GOOD_Y, 7]], 3, ["beyond the 2 columns"]),
    ("empty sheet", [], None, ["the sheet is empty"]),
    ("header only", [HEADER], None, ["no data rows"]),
    ("header and blank rows only", [HEADER, [None, None], [None, None]], None, ["no data rows"]),
    ("text", [HEADER, ["hello", GOOD_Y]], 2, ["input_list", "expected a list of 10 integers"]),
    ("a number, not text", [HEADER, [GOOD, 8]], 2, ["output_list", "as text, got 8"]),
    ("a float cell", [HEADER, [GOOD, 8.5]], 2, ["output_list", "as text, got 8.5"]),
    ("floats in the list", [HEADER, ["[8.0, 9, 5, 1, 3, 2, 9, 4, 7, 1]", GOOD_Y]], 2, ["expected a list of 10 integers"]),
    ("float target text", [HEADER, [GOOD, "[8.0]"]], 2, ["output_list", "one-integer list"]),
    ("negative digit", [HEADER, ["[-8, 9, 5, 1, 3, 2, 9, 4, 7, 1]", GOOD_Y]], 2, ["input_list[0] = -8", "digit in 0..9"]),
    ("negative target", [HEADER, [GOOD, "[-8]"]], 2, ["disagrees", "expected [8]"]),
    ("list too short", [HEADER, ["[8, 9, 5, 1, 3, 2, 9, 4, 7]", GOOD_Y]], 2, ["expected 10 integers, got 9"]),
    ("list too long", [HEADER, ["[8, 9, 5, 1, 3, 2, 9, 4, 7, 1, 0]", GOOD_Y]], 2, ["expected 10 integers, got 11"]),
    ("empty list", [HEADER, ["[]", GOOD_Y]], 2, ["expected 10 integers, got 0"]),
    ("two targets", [HEADER, [GOOD, "[8, 1]"]], 2, ["exactly 1 integer, got 2"]),
    ("no target", [HEADER, [GOOD, "[]"]], 2, ["exactly 1 integer, got 0"]),
    ("brackets missing", [HEADER, ["8, 9, 5, 1, 3, 2, 9, 4, 7, 1", GOOD_Y]], 2, ["expected a list of 10 integers"]),
    ("closing bracket missing", [HEADER, ["[8, 9, 5, 1, 3, 2, 9, 4, 7, 1", GOOD_Y]], 2, ["expected a list of 10 integers"]),
    ("target brackets missing", [HEADER, [GOOD, "8"]], 2, ["output_list", "one-integer list"]),
    ("tuple, not list", [HEADER, ["(8, 9, 5, 1, 3, 2, 9, 4, 7, 1)", GOOD_Y]], 2, ["expected a list"]),
    ("formula", [HEADER, ["=A1", GOOD_Y]], 2, ["holds a formula", "paste as values"]),
    ("formula making a valid list", [HEADER, [GOOD, '="[8]"']], 2, ["output_list", "holds a formula"]),
    ("NaN cell", [HEADER, [GOOD, float("nan")]], 2, ["output_list"]),
    ("NaN text", [HEADER, ["[nan, 9, 5, 1, 3, 2, 9, 4, 7, 1]", GOOD_Y]], 2, ["expected a list of 10 integers"]),
    ("infinity cell", [HEADER, [float("inf"), GOOD_Y]], 2, ["input_list"]),
    ("empty input cell", [HEADER, [None, GOOD_Y]], 2, ["input_list", "got an empty cell"]),
    ("empty target cell", [HEADER, [GOOD, None]], 2, ["output_list", "got an empty cell"]),
    ("huge digit", [HEADER, ["[8, 9, 5, 1, 3, 2, 9, 4, 7, 99999999999999999999999999]", GOOD_Y]], 2, ["far out of range"]),
    ("huge target (int64 overflow)", [HEADER, [GOOD, "[9223372036854775808]"]], 2, ["far out of range"]),
    ("5000-digit number (Python's int() limit)", [HEADER, [GOOD, "[" + "9" * 5000 + "]"]], 2, ["far out of range"]),
    ("huge number cell", [HEADER, [GOOD, 10 ** 20]], 2, ["output_list", "as text"]),
    ("scientific notation", [HEADER, [GOOD, "[8e0]"]], 2, ["one-integer list"]),
    ("p1 out of range", [HEADER, ["[8, 9, 5, 1, 4, 2, 9, 4, 7, 1]", GOOD_Y]], 2, ["input_list[4] = 4", "pointer in 0..3"]),
    ("p2 negative", [HEADER, ["[8, 9, 5, 1, 3, 2, 9, 4, 7, -1]", GOOD_Y]], 2, ["input_list[9] = -1", "pointer in 0..3"]),
    ("digit 10", [HEADER, ["[8, 9, 5, 1, 3, 10, 9, 4, 7, 1]", GOOD_Y]], 2, ["input_list[5] = 10", "digit in 0..9"]),
    ("target disagrees", [HEADER, [GOOD, GOOD_Y], [GOOD, "[7]"]], 3, ["disagrees", "expected [8]"]),
    ("non-ASCII digits", [HEADER, ["[٨, 9, 5, 1, 3, 2, 9, 4, 7, 1]", GOOD_Y]], 2, ["expected a list of 10 integers"]),
    ("boolean cell", [HEADER, [True, GOOD_Y]], 2, ["as text, got True"]),
    ("Excel error value", [HEADER, ["#DIV/0!", GOOD_Y]], 2, ["expected a list of 10 integers"]),
    # rows are numbered as Excel numbers them: blank rows still count
    ("bad row after blank rows", [HEADER, [GOOD, GOOD_Y], [None, None], [None, None], ["[1]", GOOD_Y]], 5, ["expected 10 integers"]),
]


@pytest.mark.parametrize("rows,row,words", [c[1:] for c in SHEET_CASES], ids=[c[0] for c in SHEET_CASES])
def test_bad_sheet_is_refused_naming_file_row_and_problem(tmp_path, rows, row, words):
    assert_refused(make_xlsx(tmp_path / "bad.xlsx", rows), row, *words)


def test_whitespace_variants_of_the_format_load(tmp_path):
    path = make_xlsx(tmp_path / "ok.xlsx", [HEADER + [None], ["  [8,9 ,5, 1,3,2,9,4,7,1] ", " [ 8 ] "], [None, None],
                                            ["[0, 0, 0, 0, 0, 9, 9, 9, 9, 3]", "[9]"]])
    x, y = load_excel(path)
    assert x.tolist() == [[8, 9, 5, 1, 3, 2, 9, 4, 7, 1], [0, 0, 0, 0, 0, 9, 9, 9, 9, 3]]
    assert y.tolist() == [8.0, 9.0] and y.dtype == torch.float32 and x.dtype == torch.long


def _good_file(tmp_path) -> Path:
    return make_xlsx(tmp_path / "good.xlsx", [HEADER, [GOOD, GOOD_Y], [GOOD, GOOD_Y]])


def _png(p):
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200)); return p


def _xls(p):
    p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000)); return p


def _zip_not_workbook(p):
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    return p


def _truncated(tmp_path):
    data = _good_file(tmp_path).read_bytes()
    p = tmp_path / "truncated.xlsx"
    p.write_bytes(data[: len(data) // 2])
    return p


def _damaged_sheet_xml(tmp_path):
    return rewrite_member(_good_file(tmp_path), tmp_path / "damaged.xlsx", "xl/worksheets/sheet",
                          lambda b: b[: len(b) * 2 // 3])


def _bad_crc(tmp_path):
    """Flip one byte of the stored (uncompressed) sheet so only the CRC check can notice."""
    src = _good_file(tmp_path)
    dst = tmp_path / "badcrc.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for name in zin.namelist():
            zout.writestr(name, zin.read(name))
    data = bytearray(dst.read_bytes())
    i = data.find(b"[8, 9, 5")
    data[i + 1] = ord("7")
    dst.write_bytes(bytes(data))
    return dst


def _no_worksheet(tmp_path):
    """A workbook whose only sheet is a chartsheet."""
    book = openpyxl.Workbook()
    book.create_chartsheet("chart")
    book.remove(book.active)
    p = tmp_path / "chartonly.xlsx"
    book.save(p)
    return p


FILE_CASES = [
    ("does not exist", lambda t: t / "nope.xlsx", ["no such file"]),
    ("a folder", lambda t: t, ["is a folder"]),
    ("plain text", lambda t: (t / "text.xlsx").write_text("input_list,output_list\n") and t / "text.xlsx", ["not a readable Excel"]),
    ("empty file", lambda t: (t / "empty.xlsx").write_bytes(b"") or t / "empty.xlsx", ["not a readable Excel"]),
    ("an image", lambda t: _png(t / "image.xlsx"), ["not a readable Excel"]),
    ("old .xls", lambda t: _xls(t / "old.xls"), ["not a readable Excel", "save it as .xlsx"]),
    ("csv", lambda t: (t / "data.csv").write_text(f"input_list,output_list\n\"{GOOD}\",\"{GOOD_Y}\"\n") and t / "data.csv",
     ["not a readable Excel", "save it as .xlsx"]),
    ("zip that is no workbook", lambda t: _zip_not_workbook(t / "zip.xlsx"), ["not a readable Excel"]),
    ("truncated xlsx", _truncated, ["not a readable Excel"]),
    ("damaged sheet XML", _damaged_sheet_xml, ["damaged Excel file"]),
    ("bad CRC inside the zip", _bad_crc, ["Excel"]),
    ("only a chartsheet", _no_worksheet, ["Excel"]),
]


@pytest.mark.parametrize("make,words", [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_unreadable_file_is_refused_naming_it(tmp_path, make, words):
    assert_refused(make(tmp_path), None, *words)


def _with_dimension(src: Path, dst: Path, ref: str) -> Path:
    """Rewrite the sheet's <dimension ref=...> (what Excel declares as the used range)."""
    def edit(b: bytes) -> bytes:
        b, n = re.subn(rb'<dimension ref="[^"]*"', b'<dimension ref="' + ref.encode() + b'"', b)
        assert n == 1
        return b
    return rewrite_member(src, dst, "xl/worksheets/sheet", edit)


def test_rows_and_columns_beyond_a_wrong_dimension_tag_are_still_checked(tmp_path):
    # openpyxl's read-only mode stops at the declared range: a lying tag must not hide bad rows
    src = make_xlsx(tmp_path / "src.xlsx", [HEADER, [GOOD, GOOD_Y], [GOOD, GOOD_Y], ["[1, 2]", GOOD_Y]])
    assert_refused(_with_dimension(src, tmp_path / "short.xlsx", "A1:B2"), 4, "expected 10 integers")
    src = make_xlsx(tmp_path / "src2.xlsx", [HEADER, [GOOD, GOOD_Y], [GOOD, GOOD_Y, "stray"]])
    assert_refused(_with_dimension(src, tmp_path / "narrow.xlsx", "A1:B3"), 3, "beyond the 2 columns")


def test_oversize_sheet_is_refused_up_front(tmp_path):
    src = make_xlsx(tmp_path / "src.xlsx", [HEADER, [GOOD, GOOD_Y]])
    big = _with_dimension(src, tmp_path / "big.xlsx", "A1:B2000001")
    msg = assert_refused(big, None, "2,000,000 data rows", f"the limit is {data_loader.MAX_ROWS:,}")
    assert "split the file" in msg


def test_row_limit_is_enforced_while_reading_when_no_size_is_declared(tmp_path, monkeypatch):
    x = sample_inputs(8, seed=1)
    path = tmp_path / "eight.xlsx"
    write_excel(path, x, target(x))   # write-only workbooks declare no <dimension>
    monkeypatch.setattr(data_loader, "MAX_ROWS", 5)
    assert_refused(path, None, "more than 5 data rows")


# ------------------------------------------------------------------ generated sheets vs an oracle
def _oracle_list(cell):
    """An independent reading of one cell of the format: a list of ints, or None if it is not one."""
    if not isinstance(cell, str) or cell.startswith("="):
        return None
    s = cell.strip()
    if len(s) < 2 or s[0] != "[" or s[-1] != "]":
        return None
    inner = s[1:-1].strip()
    if not inner:
        return []
    out = []
    for tok in inner.split(","):
        tok = tok.strip()
        digits = tok[1:] if tok.startswith("-") else tok
        if not digits or not (digits.isascii() and digits.isdigit()):
            return None
        out.append(int(digits) * (-1 if tok.startswith("-") else 1))
    return out


def _oracle_row(row):
    """(x, y) if the row is a valid sample, 'blank' if it carries nothing, None if it is bad."""
    # openpyxl stores no cell for "", so Excel and the loader see an empty-string cell as blank
    row = [None if v == "" else v for v in row] + [None] * (2 - len(row))
    if all(v is None for v in row):
        return "blank"
    if any(v is not None for v in row[2:]):
        return None
    x, y = _oracle_list(row[0]), _oracle_list(row[1])
    if x is None or y is None or len(x) != 10 or len(y) != 1:
        return None
    if not all(0 <= v <= 9 for v in x) or not (0 <= x[4] <= 3 and 0 <= x[9] <= 3):
        return None
    if y[0] != abs(x[x[4]] - x[5 + x[9]]):
        return None
    return x, y[0]


_sep = st.sampled_from([", ", ",", " , ", ",  "])
_pad = st.sampled_from(["", " ", "  "])


@st.composite
def list_text(draw, values):
    """A list written the way a person might: separators and padding vary."""
    vals = draw(values)
    sep = draw(_sep)
    return draw(_pad) + "[" + draw(_pad) + sep.join(str(v) for v in vals) + draw(_pad) + "]" + draw(_pad)


@st.composite
def valid_row(draw):
    x = draw(st.lists(st.integers(0, 9), min_size=10, max_size=10))
    x[4], x[9] = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    y = abs(x[x[4]] - x[5 + x[9]])
    return [draw(list_text(st.just(x))), draw(list_text(st.just([y])))]


@st.composite
def near_miss_row(draw):
    """A valid row with one thing wrong (or, by chance, nothing)."""
    x_text, y_text = draw(valid_row())
    x, y = _oracle_list(x_text), _oracle_list(y_text)
    kind = draw(st.sampled_from(["digit", "pointer", "length", "target", "target_len", "bracket", "float", "sign"]))
    i = draw(st.integers(0, 9))
    if kind == "digit":
        x[i] = draw(st.one_of(st.integers(-20, 20), st.integers(-10 ** 30, 10 ** 30)))
    elif kind == "pointer":
        x[draw(st.sampled_from([4, 9]))] = draw(st.integers(-5, 12))
    elif kind == "length":
        x = x[:i] if draw(st.booleans()) else x + [0] * draw(st.integers(1, 3))
    elif kind == "target":
        y = [draw(st.integers(-10 ** 25, 10 ** 25))]
    elif kind == "target_len":
        y = draw(st.lists(st.integers(0, 9), max_size=3))
    x_text, y_text = draw(list_text(st.just(x))), draw(list_text(st.just(y)))
    if kind == "bracket":
        x_text = x_text.replace(draw(st.sampled_from(["[", "]"])), "", 1)
    elif kind == "float":
        y_text = f"[{y[0] if y else 0}.0]" if draw(st.booleans()) else draw(st.floats(allow_nan=True).map(lambda f: f"[{f}]"))
    elif kind == "sign":
        x_text = x_text.replace(str(x[0]), f"+{x[0]}", 1) if x else x_text
    return [x_text, y_text]


# characters openpyxl can store (no control characters or lone surrogates)
_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30)
_junk_cell = st.one_of(
    st.none(), _text, st.integers(-10 ** 20, 10 ** 20), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), _text.map(lambda s: "=" + s), st.sampled_from(["[", "]", "[]", "[,]", "[1,]", "[ ]", "nan", "[nan]", "#N/A"]),
    list_text(st.lists(st.integers(-3, 12), max_size=12)),
)
_row = st.one_of(
    valid_row(), valid_row(), near_miss_row(),
    st.lists(_junk_cell, min_size=0, max_size=3),
    st.just([None, None]),
)
_header = st.one_of(
    st.just(HEADER), st.just(HEADER), st.just(HEADER), st.just(HEADER + [None]),
    st.lists(st.one_of(st.sampled_from(HEADER + ["Input_List", "output", ""]), _text), max_size=3),
)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(header=_header, rows=st.lists(_row, max_size=8))
def test_generated_sheets_load_exactly_or_are_refused_at_the_first_bad_row(tmp_path, header, rows):
    path = tmp_path / "gen.xlsx"
    make_xlsx(path, [header] + rows)
    try:
        x, y = load_excel(path)
    except PipelineError as e:
        msg = str(e)
        event("refused: " + re.sub(r"-?\d+", "N", msg.replace(str(path), ""))[:40])
        assert "\n" not in msg and str(path) in msg, msg
        hdr = list(header)
        while hdr and hdr[-1] is None:
            hdr.pop()
        if not hdr and all(_oracle_row(r) == "blank" for r in rows):
            assert "the sheet is empty" in msg or "row 1:" in msg, msg
            return
        if hdr != HEADER:
            assert "row 1:" in msg, msg
            return
        verdicts = [_oracle_row(r) for r in rows]
        bad = [i for i, v in enumerate(verdicts) if v is None]
        if bad:
            assert f"row {bad[0] + 2}:" in msg, (msg, rows)  # header is row 1
        else:
            assert all(v == "blank" for v in verdicts) and "no data rows" in msg, (msg, rows)
        return
    event(f"loaded {len(x)} rows")
    # it loaded: then the oracle agrees with every row, and the samples round-trip exactly
    hdr = list(header)
    while hdr and hdr[-1] is None:
        hdr.pop()
    assert hdr == HEADER
    expected = [v for v in (_oracle_row(r) for r in rows) if v != "blank"]
    assert None not in expected and expected
    assert x.tolist() == [e[0] for e in expected] and y.tolist() == [float(e[1]) for e in expected]
    again = tmp_path / "again.xlsx"
    write_excel(again, x, y)
    x2, y2 = load_excel(again)
    assert torch.equal(x2, x) and torch.equal(y2, y)


# ------------------------------------------------------------------ through the stage scripts
def _cli_in_process(module, argv, capsys):
    """The error boundary of a script (`run_main`), in-process: exit code and stderr."""
    with pytest.raises(SystemExit) as e:
        run_main(module.main, module.parse_args(argv))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize("rows,row,words", [c[1:] for c in SHEET_CASES[::3]], ids=[c[0] for c in SHEET_CASES[::3]])
def test_stage_refuses_bad_excel_with_one_line_and_changes_nothing(copy_run, tmp_path, capsys, rows, row, words):
    run = copy_run()
    bad = make_xlsx(tmp_path / "bad.xlsx", rows)
    before = snapshot(run.root)
    for module, argv in ((train_mlp, ["--evaluate", str(bad)]), (harvest_activations, ["--data", str(bad)])):
        code, out, err = _cli_in_process(module, ["--run-dir", str(run.root), "--quiet"] + argv, capsys)
        assert code == 2 and out == ""
        assert err.startswith("error: ") and err.count("\n") == 1 and str(bad) in err, err
        if row is not None:
            assert f"row {row}:" in err
        assert all(w in err for w in words), err
    assert snapshot(run.root) == before


def _run_cli(*argv):
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_real_processes_refuse_bad_excel_without_traceback(copy_run, tmp_path):
    """Two cases through real subprocesses, run side by side (each costs a Python + torch start-up);
    the other cases go through the same `run_main` boundary in-process above."""
    run = copy_run()
    cases = [
        (["train_mlp.py", "--evaluate", str(make_xlsx(tmp_path / "disagree.xlsx", [HEADER, [GOOD, GOOD_Y], [GOOD, "[7]"]]))],
         "row 3:", "disagrees"),
        (["harvest_activations.py", "--data", str(_damaged_sheet_xml(tmp_path))], "damaged.xlsx", "damaged Excel file"),
    ]
    before = snapshot(run.root)
    procs = [subprocess.Popen([sys.executable, *argv, "--run-dir", str(run.root)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv, *_ in cases]
    for p, (argv, *words) in zip(procs, cases):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 2, (argv, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
        assert all(w in err for w in words), err
        assert out == ""
    assert snapshot(run.root) == before


def test_reports_with_a_bad_split_rewrite_nothing(copy_run, tmp_path, capsys):
    """feature_reports reads the three splits for its per-sample trace, which it writes last: a bad
    row there must stop it before any page, label file or metrics section is rewritten."""
    import train_sae
    import feature_reports
    run = copy_run()
    train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet", *TINY_SAE_FLAGS]))
    book = openpyxl.load_workbook(run.test_xlsx)
    book.worksheets[0]["B40"] = "[11]"
    book.save(run.test_xlsx)
    before = snapshot(run.root)
    code, out, err = _cli_in_process(feature_reports, ["--run-dir", str(run.root), "--quiet"], capsys)
    assert code == 2 and str(run.test_xlsx) in err and "row 40:" in err and err.count("\n") == 1, err
    assert snapshot(run.root) == before


@pytest.mark.parametrize("split,module,argv", [
    ("val", train_mlp, ["--d-mlp", "8", "--d-hidden", "16", "--epochs", "1"]),
    ("train", harvest_activations, []),
], ids=["train_mlp, bad val split", "harvest, bad train split"])
def test_stage_with_a_bad_split_of_its_own_run_changes_nothing(copy_run, capsys, split, module, argv):
    run = copy_run()
    path = run.split_xlsx(split)
    book = openpyxl.load_workbook(path)
    book.worksheets[0]["A7"] = "[8, 9, 5, 1, 3, 2, 9, 4, 7]"
    book.save(path)
    before = snapshot(run.root)
    code, out, err = _cli_in_process(module, ["--run-dir", str(run.root), "--quiet"] + argv, capsys)
    assert code == 2 and err.count("\n") == 1 and str(path) in err and "row 7:" in err and "expected 10 integers" in err, err
    assert snapshot(run.root) == before
