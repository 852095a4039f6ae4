"""Every numeric flag of the stage scripts goes through common/validate.py: a hostile value is refused
before any work, as one line `error: argument --flag: expected ..., got '...'` with exit code 2."""
import argparse
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import harvest_activations
import import_sae
import label_features
import train_mlp
from common import validate
from common.cli import MAX_ERROR_CHARS, one_line
from dataset import data_generator

ROOT = Path(__file__).resolve().parents[2]
HUGE = "9" * 32000
# (script module, flag, hostile values) for every numeric flag of these scripts
INT_FLAGS = [(data_generator, f) for f in ("--n-train", "--n-val", "--n-test")] + \
            [(train_mlp, f) for f in ("--epochs", "--batch-size", "--d-mlp", "--d-hidden")] + \
            [(harvest_activations, f) for f in ("--n-samples", "--batch-size")] + \
            [(label_features, "--n-inputs"), (import_sae, "--n-eval")]
FLOAT_FLAGS = [(train_mlp, "--lr")]
SCRIPTS = (data_generator, train_mlp, harvest_activations, label_features, import_sae)
BAD_INTS = ["0", "-1", "1.5", "1e3", "2**70", "0x10", "", " ", "nan", "abc", "١٢", HUGE, "-" + HUGE]
BAD_FLOATS = ["0", "-1e-3", "nan", "inf", "-inf", "1e400", "", "abc", HUGE]


def refused(capsys, module, argv) -> str:
    """parse_args(argv) must exit 2 with one bounded `error:` line on stderr and nothing on stdout."""
    with pytest.raises(SystemExit) as exc:
        module.parse_args(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: "), err[:300]
    assert len(err) <= MAX_ERROR_CHARS + 60   # + 'error: ', the length note and '(see --help)'
    return err


@pytest.mark.parametrize("module,flag", INT_FLAGS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("value", BAD_INTS, ids=lambda v: v[:12])
def test_bad_integer_flag_is_one_line(capsys, module, flag, value):
    err = refused(capsys, module, [f"{flag}={value}"])
    assert flag in err


@pytest.mark.parametrize("module,flag", FLOAT_FLAGS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("value", BAD_FLOATS, ids=lambda v: v[:12])
def test_bad_float_flag_is_one_line(capsys, module, flag, value):
    err = refused(capsys, module, [f"{flag}={value}"])
    assert flag in err and "expected a finite number > 0" in err


@pytest.mark.parametrize("module", SCRIPTS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("argv", [["--seed=-1"], [f"--seed={2**32}"], ["--seed=2**70"], ["--seed", HUGE],
                                  ["--device=tpu"], ["--device=cuda:x"], ["--device", HUGE], ["--run-dir"],
                                  ["--bogus-" + "x" * 5000]], ids=lambda a: a[0][:16])
def test_shared_flags_are_checked_by_every_stage(capsys, module, argv):
    refused(capsys, module, argv)


def test_train_mlp_weight_decay_may_be_zero_but_not_negative(capsys):
    assert train_mlp.parse_args(["--weight-decay=0"]).weight_decay == 0.0
    assert "--weight-decay" in refused(capsys, train_mlp, ["--weight-decay=-1"])
    assert "--weight-decay" in refused(capsys, train_mlp, ["--weight-decay=nan"])


def test_checkpoint_every_zero_means_never():
    assert train_mlp.parse_args(["--checkpoint-every=0"]).checkpoint_every == 0
    helptext = subprocess.run([sys.executable, "train_mlp.py", "--help"], cwd=ROOT, capture_output=True,
                              text=True, timeout=120).stdout
    assert "0: none" in " ".join(helptext.split())


@given(st.integers())
@settings(max_examples=200, deadline=None)
def test_positive_int_takes_exactly_the_integers_from_1(n):
    if 1 <= n <= validate.MAX_INT:
        assert validate.positive_int(str(n)) == n
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            validate.positive_int(str(n))


@given(st.integers(min_value=-2**80, max_value=2**80))
@settings(max_examples=200, deadline=None)
def test_seed_range_keeps_every_derived_stream_seed_valid_for_torch(n):
    if 0 <= n <= validate.MAX_SEED:
        assert validate.seed(str(n)) == n
        assert n * 1000 + 999 < 2**63   # stream_seed(seed, k) + small offsets stays a valid torch seed
    else:
        with pytest.raises(argparse.ArgumentTypeError):
            validate.seed(str(n))


@given(st.one_of(st.floats(), st.text(max_size=40)))
@settings(max_examples=300, deadline=None)
def test_finite_positive_float_refuses_everything_but_finite_positive_numbers(value):
    text = str(value)
    try:
        parsed = float(text)
    except ValueError:
        parsed = None
    if parsed is not None and math.isfinite(parsed) and parsed > 0:
        assert validate.finite_positive_float(text) == parsed
    else:
        with pytest.raises(argparse.ArgumentTypeError) as exc:
            validate.finite_positive_float(text)
        assert len(str(exc.value)) < 200


@given(st.text(min_size=0, max_size=3000))
@settings(max_examples=100, deadline=None)
def test_shown_and_one_line_are_bounded(text):
    assert len(validate.shown(text)) <= validate.SHOW_LIMIT + 25
    line = one_line(text * 3)
    assert "\n" not in line and len(line) <= MAX_ERROR_CHARS + 25


@pytest.mark.parametrize("argv", [
    ["dataset/data_generator.py", "--seed", str(2**70)],
    ["harvest_activations.py", "--batch-size", "-1"],
    ["train_mlp.py", "--d-hidden", "0"],
    ["train_mlp.py", "--lr", "nan"],
])
def test_real_process_exits_2_with_one_line_and_changes_nothing(tmp_path, argv):
    """The end-to-end promise, as a user sees it: exit 2, one line, no traceback, the run folder untouched."""
    (tmp_path / "keep.txt").write_text("old")
    r = subprocess.run([sys.executable, *argv, "--run-dir", str(tmp_path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: argument --"), r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
