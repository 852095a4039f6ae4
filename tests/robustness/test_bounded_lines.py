"""Error lines stay short whatever the user's input: a value is echoed cut to ~80 characters with its length."""
import openpyxl
import pytest

from common.io import PipelineError
from dataset.data_loader import load_excel


@pytest.mark.parametrize("header", [["x" * 32000, "output_list"], ["input_list", "output_list", *["y" * 500] * 40]])
def test_a_huge_header_gives_a_short_error_line(tmp_path, header):
    path = tmp_path / "big.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(header)
    wb.active.append(["[8, 9, 5, 1, 3, 2, 9, 4, 7, 1]", "[8]"])
    wb.save(path)
    with pytest.raises(PipelineError) as e:
        load_excel(path)
    line = str(e.value)
    assert "\n" not in line and len(line) < 600 and "characters)" in line and "row 1" in line
