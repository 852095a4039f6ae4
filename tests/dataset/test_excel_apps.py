"""Every workbook the pipeline writes opens in a real spreadsheet application and shows what was written.

LibreOffice Calc (headless) converts the three data splits (dataset.data_loader.write_excel, written
by dataset/data_generator.py) and the report trace (viz.trace.write_trace, written by
feature_reports.py on a tiny run, at the default L = 4 and at another L) to CSV, every sheet; each CSV must hold exactly the cells openpyxl
reads from the file, and the splits must parse back to the samples load_excel returns. openpyxl
and calamine share assumptions about the format with our writers; a second, independent reader
catches a file that only they accept.

Needs `soffice` (`apt-get install -y libreoffice-calc-nogui`; .ci/run installs it); skipped with the
reason otherwise, except under CI (CI=true), where a missing LibreOffice is a failure.
"""
import csv
import math
import os
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest

from dataset.data_loader import COLUMNS, load_excel
from tests.helpers import OTHER_SLOTS
from tests.viz.test_feature_reports import shared_reports_run

SPLITS = ("train", "val", "test")
# LibreOffice's CSV filter options: comma, '"' quotes, UTF-8 (76), from line 1, ..., "save cell
# contents as shown" off (full numbers, not the 0.000 display format), and -1: every sheet, each to
# <name>-<sheet>.csv
CSV_FILTER = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("soffice not found under CI: .ci/run should have installed libreoffice-calc-nogui")
        pytest.skip("soffice not found: install it with `apt-get install -y libreoffice-calc-nogui` to run this test")
    return found


def convert_to_csv(files: list[Path], out: Path, profile: Path) -> None:
    """Every sheet of every file to `out`/<stem>-<sheet>.csv, in one LibreOffice process with a private
    profile (so the test neither reads nor writes the user's LibreOffice settings)."""
    cmd = [soffice(), "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}",
           "--convert-to", CSV_FILTER, "--outdir", str(out), *map(str, files)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"soffice failed ({r.returncode}): {r.stderr[-2000:]}"


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def shown(value) -> str | float:
    """What LibreOffice's CSV holds for a cell openpyxl read: text as is, booleans as TRUE/FALSE,
    numbers as numbers (compared as floats), blanks as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return float(value)
    return str(value)


def assert_sheet_equal(csv_rows: list[list[str]], sheet, where: str) -> None:
    written = [list(r) for r in sheet.iter_rows(values_only=True)]
    while written and all(v is None for v in written[-1]):
        written.pop()
    assert len(csv_rows) == len(written), f"{where}: {len(csv_rows)} rows in LibreOffice, {len(written)} written"
    for r, (got_row, want_row) in enumerate(zip(csv_rows, written), start=1):
        want_row = [shown(v) for v in want_row]
        got_row = got_row + [""] * (len(want_row) - len(got_row))      # LibreOffice drops trailing blanks
        assert len(got_row) == len(want_row), f"{where}: row {r}: {len(got_row)} cells, {len(want_row)} written"
        for c, (got, want) in enumerate(zip(got_row, want_row), start=1):
            if isinstance(want, float):
                assert math.isclose(float(got), want, rel_tol=1e-12, abs_tol=1e-12), f"{where}: row {r} col {c}: {got!r} != {want!r}"
            else:
                assert got == want, f"{where}: row {r} col {c}: {got!r} != {want!r}"


@pytest.fixture(scope="module", params=["default", "other_slots"])
def workbooks(request, tmp_path_factory):
    """{name: (xlsx path, {sheet name: CSV rows})} for the splits and the trace, converted once, of the
    tiny run at L = 4 and of the one at tests.helpers.OTHER_SLOTS (2L + 2 integers per input cell)."""
    soffice()                                  # skip (or fail under CI) before building anything
    other = request.param == "other_slots"
    tiny_run = request.getfixturevalue("tiny_run_other_slots" if other else "tiny_run")
    reports_paths, _ = shared_reports_run(tiny_run, tmp_path_factory,
                                          "shared_reports_run_other_slots" if other else "shared_reports_run")
    files = {split: tiny_run.split_xlsx(split) for split in SPLITS}
    files["trace"] = reports_paths.trace_xlsx
    tmp = tmp_path_factory.mktemp("excel_apps")
    convert_to_csv(list(files.values()), tmp / "csv", tmp / "profile")
    out = {}
    for name, path in files.items():
        book = openpyxl.load_workbook(path, read_only=True)
        try:
            csvs = {s: read_csv(tmp / "csv" / f"{path.stem}-{s}.csv") for s in book.sheetnames
                    if (tmp / "csv" / f"{path.stem}-{s}.csv").exists()}
            assert sorted(csvs) == sorted(book.sheetnames), f"{path.name}: LibreOffice exported {sorted(csvs)}"
        finally:
            book.close()
        out[name] = (path, csvs)
    return out


@pytest.mark.parametrize("name", [*SPLITS, "trace"])
def test_libreoffice_shows_every_cell_as_written(workbooks, name):
    path, csvs = workbooks[name]
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        for sheet_name, rows in csvs.items():
            assert_sheet_equal(rows, book[sheet_name], f"{path.name} [{sheet_name}]")
    finally:
        book.close()


@pytest.mark.parametrize("split", SPLITS)
def test_libreoffice_reads_the_samples_load_excel_returns(workbooks, split):
    path, csvs = workbooks[split]
    (rows,) = csvs.values()
    x, y = load_excel(path)
    assert x.shape[1] == 2 * (OTHER_SLOTS if "other_slots" in str(path) else 4) + 2
    assert rows[0] == list(COLUMNS)
    assert len(rows) - 1 == len(x) > 0
    assert [r[0] for r in rows[1:]] == [str(xi) for xi in x.tolist()]
    assert [r[1] for r in rows[1:]] == [f"[{int(yi)}]" for yi in y.tolist()]
