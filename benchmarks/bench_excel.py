"""Excel speed: reading the data format, writing the trace.

    python benchmarks/bench_excel.py [--rows 200000] [--trace-rows 10000]

1. load_excel (calamine + a vectorised parse) of a --rows file written by write_excel; the
   openpyxl reading it replaced is timed too (--skip-openpyxl to leave that ~20 s out).
2. The Excel trace (viz.trace.trace_sheet: --trace-rows rows x 64 columns, as feature_reports.py
   writes it) through viz.xlsx (the project's own XML writer) and through xlsxwriter in
   constant-memory mode, the maintained alternative (kept out while it measures slower than 3 s
   for 10,000 rows: 7.4 s vs 1.3 s on the 2-core machine, ~11.6 vs ~2.0 us a cell).
Prints this machine's matmul yardstick first, so figures from different machines compare.
"""
import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._machine import machine_line  # noqa: E402
from dataset.task import sample_inputs, target  # noqa: E402
from dataset.data_loader import load_excel, write_excel  # noqa: E402
from viz.trace import trace_sheet  # noqa: E402
from viz.xlsx import write_xlsx  # noqa: E402



def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def openpyxl_rows(path: Path) -> int:
    """What the old reader spent its time on: every cell through openpyxl's read-only mode."""
    import openpyxl
    book = openpyxl.load_workbook(path, read_only=True)
    n = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    return n


def write_with_xlsxwriter(path: Path, sheet) -> None:
    """The same styled table as viz.xlsx writes, through xlsxwriter (constant-memory mode)."""
    import xlsxwriter

    from viz.xlsx import DECIMAL_STYLE, HEADER_STYLE, LEFT_STYLE
    centred = {"align": "center", "valign": "vcenter"}
    specs = {0: centred, HEADER_STYLE: {**centred, "bold": True, "font_color": "#FFFFFF", "bg_color": "#2F5FD0",
                                        "pattern": 1, "text_wrap": True},
             LEFT_STYLE: {"align": "left", "valign": "vcenter"}, DECIMAL_STYLE: {**centred, "num_format": "0.000"}}
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
    fmt = {k: book.add_format(v) for k, v in specs.items()}
    ws = book.add_worksheet(sheet.name)
    for i, (w, s) in enumerate(zip(sheet.widths, sheet.styles)):
        ws.set_column(i, i, w, fmt[s])
    ws.set_row(0, 32)
    ws.write_row(0, 0, sheet.header, fmt[HEADER_STYLE])
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, sheet.n_rows, len(sheet.header) - 1)
    col_fmt = [fmt[s] for s in sheet.styles]
    for r, row in enumerate(zip(*sheet.columns), start=1):      # typed writes: no per-cell type dispatch
        for c, v in enumerate(row):
            if v is None or v == "" or (isinstance(v, float) and v != v):
                continue
            if isinstance(v, bool):
                ws.write_boolean(r, c, v, col_fmt[c])
            elif isinstance(v, (int, float)):
                ws.write_number(r, c, v, col_fmt[c])
            else:
                ws.write_string(r, c, str(v), col_fmt[c])
    book.close()


def trace_columns(n: int, d_hidden: int = 512, d_sae: int = 64):
    """Inputs of trace_sheet shaped like the default run's (values random, sizes real)."""
    g = torch.Generator().manual_seed(0)
    x = sample_inputs(n, seed=0)
    y = target(x).float()
    pred = y + torch.randn(n, generator=g) * 0.1
    h = torch.relu(torch.randn(n, d_hidden, generator=g))
    f = torch.relu(torch.randn(n, d_sae, generator=g) - 1.0)
    splits = ["train"] * n
    explanation = [f"ramp -(a - b) | p1 = {i % 4}" for i in range(d_sae)]
    return splits, x, y, pred, pred, h, f, explanation


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--trace-rows", type=int, default=10_000)
    ap.add_argument("--skip-openpyxl", action="store_true")
    args = ap.parse_args(argv)
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        x = sample_inputs(args.rows, seed=0)
        data = tmp / "data.xlsx"
        _, t_write = timed(write_excel, data, x, target(x))
        (x2, _), t_load = timed(load_excel, data)
        assert torch.equal(x2, x)
        print(f"data file {args.rows:,} rows ({data.stat().st_size / 1e6:.1f} MB): write_excel {t_write:.2f} s, "
              f"load_excel {t_load:.2f} s (calamine)")
        if not args.skip_openpyxl:
            n, t_old = timed(openpyxl_rows, data)
            print(f"  openpyxl read-only, cells only (the reader replaced): {t_old:.2f} s for {n - 1:,} rows")

        sheet = trace_sheet(*trace_columns(args.trace_rows))
        cells = sheet.n_rows * len(sheet.header)
        _, t_own = timed(write_xlsx, tmp / "trace.xlsx", [sheet])
        print(f"trace {sheet.n_rows:,} rows x {len(sheet.header)} columns ({cells:,} cells): "
              f"viz.xlsx (own XML writer) {t_own:.2f} s ({t_own / cells * 1e6:.2f} us/cell)")
        if importlib.util.find_spec("xlsxwriter") is None:
            print("  xlsxwriter: not installed, not timed")
        else:
            _, t_xw = timed(write_with_xlsxwriter, tmp / "trace_xw.xlsx", sheet)
            print(f"  xlsxwriter constant_memory: {t_xw:.2f} s ({t_xw / cells * 1e6:.2f} us/cell)")


if __name__ == "__main__":
    main()
