"""benchmarks/bench_saelens.py: the side-by-side table with SAELens, on the tiny run (needs sae-lens: run
this file with a venv that has it, as benchmarks/check_saelens.py says; skipped elsewhere), and its refusals."""
import importlib.util
import re

import pytest

from benchmarks import bench_saelens
from common.cli import run_main


@pytest.mark.parametrize("b_dec", ["zero", "median"])
def test_prints_one_row_per_sae_with_both_trainers_measured(tiny_run, capsys, b_dec):
    pytest.importorskip("sae_lens", reason="sae-lens not installed (a venv of its own: benchmarks/check_saelens.py)")
    bench_saelens.main(bench_saelens.parse_args(["--run-dir", str(tiny_run.root), "--quick", "--cases", "topk256,relu2048",
                                                 "--threads", "1", "--saelens-b-dec", b_dec]))
    out = capsys.readouterr().out
    assert out.count("fp32 matmul") == 2                              # the machine's rate, start and end
    rows = [line for line in out.splitlines() if line.startswith("| TopK") or line.startswith("| ReLU")]
    assert len(rows) == 2
    for row, max_l0 in zip(rows, (16, 2048)):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"512 x {bench_saelens.QUICK_STEPS}"
        seconds = [float(x) for x in re.findall(r"([\d.]+) s", cells[2] + cells[3])]
        assert len(seconds) == 3 and all(s > 0 for s in seconds)
        for stats in cells[5:7]:                                     # ours, SAELens's: FVU / L0 / dead
            fvu, l0, dead = stats.split(" / ")
            assert 0 <= float(fvu) < 1.5 and 0 < float(l0) <= max_l0 and 0 <= int(dead.rstrip("%")) <= 100


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench_saelens.parse_args(["--n-eval", "0"])
    assert e.value.code == 2 and capsys.readouterr().err.startswith("error: argument --n-eval")
    with pytest.raises(SystemExit) as e:
        run_main(bench_saelens.main, bench_saelens.parse_args(["--run-dir", str(tmp_path), "--cases", "nope"]))
    err = capsys.readouterr().err
    expected = "--cases 'nope'" if importlib.util.find_spec("sae_lens") else "sae_lens: not importable"
    assert e.value.code == 2 and err.startswith("error: ") and expected in err and err.count("\n") == 1
