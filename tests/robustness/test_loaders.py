"""Every loader validates what it reads, every numeric flag has a range, SAE names cannot collide
(issue 20, items 3 and 4).

Contract, as for the other hostile artifacts (test_bad_artifacts.py): exit code 2 with one `error:` line
naming the file or flag, no traceback, no file of the run changed. A damaged metrics.json is the one
exception by design: it is rebuilt, never fatal (one `warning:` line, the old file set aside).
"""
import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import torch

import feature_probe
import run_summary
import train_mlp
import train_sae
from common.cli import run_main
from common.io import read_metrics, update_metrics
from common.paths import RunPaths
from sae import sae_definition
from sae.sae_definition import load_sae

from tests.helpers import TINY, TINY_SAE_FLAGS
from tests.robustness.test_bad_artifacts import snapshot

SAE_FLAGS = [*TINY_SAE_FLAGS, "--checkpoint-every", "10"]
MLP_FLAGS = ["--d-mlp", str(TINY["d_mlp"]), "--d-hidden", str(TINY["d_hidden"]), "--epochs", "3",
             "--batch-size", "128", "--checkpoint-every", "1"]


@contextmanager
def keep_checkpoints():
    """Training as if interrupted after its last checkpoint: the scripts delete their checkpoint when
    they finish, so that deletion is skipped."""
    real = Path.unlink
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "unlink", lambda self, missing_ok=False: None if self.name == "checkpoint.pth" else real(self, missing_ok))
        yield


@pytest.fixture(scope="module")
def full_run(tiny_run, tmp_path_factory) -> RunPaths:
    """The tiny run plus a labelled tiny SAE and both trainers' resumable checkpoints (READ-ONLY; copy it)."""
    import label_features
    run = RunPaths(tmp_path_factory.mktemp("loaders") / "run")
    scratch = RunPaths(tmp_path_factory.mktemp("loaders") / "scratch")
    shutil.copytree(tiny_run.root, run.root)
    shutil.copytree(tiny_run.root, scratch.root)
    with keep_checkpoints():
        train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet", *SAE_FLAGS]))
        train_mlp.main(train_mlp.parse_args(["--run-dir", str(scratch.root), "--quiet", *MLP_FLAGS]))
    shutil.copy(scratch.mlp_checkpoint, run.mlp_checkpoint)
    label_features.main(label_features.parse_args(["--run-dir", str(run.root), "--quiet", "--n-inputs", "2000"]))
    assert run.sae_checkpoint.exists() and run.mlp_checkpoint.exists()
    return run


@pytest.fixture
def run(full_run, tmp_path) -> RunPaths:
    dst = RunPaths(tmp_path / "run")
    shutil.copytree(full_run.root, dst.root)
    return dst


def refused(capsys, fn, args=None) -> str:
    """`fn(args)` through the scripts' error boundary: exit 2, one `error:` line, no traceback."""
    with pytest.raises(SystemExit) as e:
        run_main(fn, args)
    out = capsys.readouterr()
    assert e.value.code == 2, out.err
    assert out.err.startswith("error: ") and out.err.count("\n") == 1 and "Traceback" not in out.err, out.err
    return out.err


def stage(module, run: RunPaths, *flags):
    """(main, parsed args) of a stage on `run`."""
    return module.main, module.parse_args(["--run-dir", str(run.root), "--quiet", *flags])


def parse_refused(capsys, module, *argv) -> str:
    """argparse refuses the flag: exit 2, one line."""
    with pytest.raises(SystemExit) as e:
        module.parse_args(list(argv))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def _edit_torch(path: Path, fn) -> None:
    obj = torch.load(path, weights_only=True)
    fn(obj)
    torch.save(obj, path)


# ------------------------------------------------------------------ item 3: names that cannot collide
def test_sweep_member_names_keep_the_sign_of_the_exponent():
    args = train_sae.parse_args(["--sweep", "l1_coeff=1e-3,1e+3"])
    names = [train_sae.sweep_member(args, "l1_coeff", t) for t in ("1e-3", "1e+3", "1e3", "0.005")]
    assert names == ["sweep_l1_coeff_1em3", "sweep_l1_coeff_1ep3", "sweep_l1_coeff_1e3", "sweep_l1_coeff_0_005"]


@pytest.mark.parametrize("argv,words", [
    (["--sweep", "l1_coeff=1.0,1_0", "--architecture", "relu"], ["'1_0'", "sweep_l1_coeff_1_0", "also the name of value '1.0'"]),
    (["--sweep", "k=2,4,2"], ["k = 2 is given twice"]),
    (["--name", "n" * 62, "--sweep", "k=2,4"], ["66 characters, at most 64"]),
    (["--name", "Default"], ["--name", "'Default'", "differs only in case"]),
    (["--name", "PAPER"], ["--name", "'PAPER'", "differs only in case from the run's SAE 'paper'"]),
], ids=["two values one name", "a value twice", "derived name over 64", "Default", "case clash"])
def test_colliding_or_overlong_names_are_refused_before_training(run, capsys, argv, words):
    paper = run.for_sae("paper")
    paper.sae_dir.mkdir(parents=True)
    shutil.copy(run.sae, paper.sae)
    before = snapshot(run.root)
    err = refused(capsys, *stage(train_sae, run, *TINY_SAE_FLAGS, *argv))
    assert all(w in err for w in words), err
    assert snapshot(run.root) == before


# ------------------------------------------------------------------ item 4: flags with a range
@pytest.mark.parametrize("module,argv,words", [
    (feature_probe, ["--clamp", "3=nan"], ["--clamp", "'3=nan'"]),
    (feature_probe, ["--clamp", "3=inf"], ["--clamp"]),
    (feature_probe, ["--clamp", "3=1e400"], ["--clamp"]),
    (feature_probe, ["--clamp", "3=2e6"], ["--clamp", "[-1e+06, 1e+06]"]),
    (feature_probe, ["--clamp", "3"], ["--clamp", "ID=VALUE"]),
    (train_sae, ["--d-sae", "1000000000"], ["--d-sae", "1..131,072"]),
])
def test_numeric_flags_have_ranges(capsys, module, argv, words):
    err = parse_refused(capsys, module, *argv)
    assert all(w in err for w in words), err


def test_a_swept_size_beyond_the_cap_is_refused_before_training(run, capsys):
    before = snapshot(run.root)
    err = refused(capsys, *stage(train_sae, run, *TINY_SAE_FLAGS, "--sweep", "d_sae=32,1000000000"))
    assert "d_sae: expected an integer 1..131,072" in err, err
    assert snapshot(run.root) == before


def test_the_size_cap_counts_the_layer_width(run, capsys):
    """d_sae within the flag's range but d_in x d_sae over the weights cap is refused from the config."""
    from sae.base import MAX_SAE_WEIGHTS
    from sae.registry import sae_config
    with pytest.raises(ValueError, match="weights per matrix"):
        sae_config("topk", d_in=8192, d_sae=MAX_SAE_WEIGHTS // 8192 + 1, k=4)


def test_probe_json_is_always_valid_json(run, capsys):
    """A NaN anywhere in what --json prints is written as null, never as a bare NaN."""
    m = json.loads(run.metrics.read_text())
    m["interpretability"]["features_monosemantic_share"] = float("nan")
    run.metrics.write_text(json.dumps(m))                      # Python's json writes (and reads) NaN
    run_main(*stage(feature_probe, run, "--json", "--clamp", "3=1e6"))
    text = capsys.readouterr().out

    def strict(constant):
        raise ValueError(f"not JSON: {constant}")
    out = json.loads(text, parse_constant=strict)
    assert out["labels"]["features_monosemantic_share"] is None


# ------------------------------------------------------------------ item 4: model files and SAELens folders
def _claim(key, value):
    return lambda c: c["config"].__setitem__(key, value)


MODEL_FILES = [
    # (name, artifact, change to the loaded dict, words)
    ("SAE config claims 100,000 features", "sae", _claim("d_sae", 100_000), ["sae_model.pth", "W_dec", "[100000, 64]"]),
    ("SAE config claims 400,000 features", "sae", _claim("d_sae", 400_000), ["sae_model.pth", "400,000", "131,072"]),
    ("float k", "sae", _claim("k", 4.0), ["sae_model.pth", "k = 4.0: expected an integer"]),
    ("bool k", "sae", _claim("k", True), ["sae_model.pth", "k = True"]),
    ("string size", "sae", _claim("d_sae", "32"), ["sae_model.pth", "d_sae = '32'"]),
    ("SAE tensor of text", "sae", lambda c: c["state_dict"].__setitem__("b_enc", "x"), ["sae_model.pth", "'b_enc' is str"]),
    ("SAE config a list", "sae", lambda c: c.__setitem__("config", [1, 2]), ["sae_model.pth", "not an SAE checkpoint"]),
    ("MLP config claims a 8000-wide layer", "mlp", _claim("d_hidden", 8000), ["perfect_mlp.pth", "fc2.weight", "[8000, 32]"]),
    ("MLP config claims a 10**9-wide layer", "mlp", _claim("d_hidden", 10**9), ["perfect_mlp.pth", "expected 1..8192"]),
    ("MLP width a float", "mlp", _claim("d_mlp", 32.0), ["perfect_mlp.pth", "d_mlp = 32.0: expected an integer"]),
]


@pytest.mark.parametrize("artifact,change,words", [c[1:] for c in MODEL_FILES], ids=[c[0] for c in MODEL_FILES])
def test_model_files_are_checked_from_config_and_shapes(run, capsys, monkeypatch, artifact, change, words):
    _edit_torch(getattr(run, artifact), change)
    real, built = sae_definition.build_sae, []

    def recording_build(cfg, generator=None):
        sae = real(cfg, generator)
        built.append(sae.W_dec.device.type)
        return sae
    monkeypatch.setattr(sae_definition, "build_sae", recording_build)
    before = snapshot(run.root)
    err = refused(capsys, *stage(feature_probe, run))
    assert all(w in err for w in words), err
    assert set(built) <= {"meta"}, "the claimed SAE was allocated before its file was refused"
    assert snapshot(run.root) == before


def _cfg(folder: Path, fn):
    path = folder / "cfg.json"
    cfg = json.loads(path.read_text())
    new = fn(cfg)
    path.write_text(new if isinstance(new, str) else json.dumps(cfg if new is None else new))


SAELENS = [
    ("nested 100,000 deep", lambda c: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("object nested 100,000 deep", lambda c: '{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ("architecture a list", lambda c: {**c, "architecture": ["topk"]}, "architecture = ['topk']"),
    ("float k", lambda c: {**c, "k": 4.0}, "k = 4.0: expected an integer"),
    ("NaN k", lambda c: json.dumps({**c, "k": float("nan")}), "k = nan"),
    ("dtype a list", lambda c: {**c, "dtype": ["float32"]}, "dtype"),
    ("size a float", lambda c: {**c, "d_sae": 32.0}, "positive integers"),
    ("claims 100,000 features", lambda c: {**c, "d_sae": 100_000}, "expected float [64, 100000]"),
]


@pytest.mark.parametrize("change,words", [c[1:] for c in SAELENS], ids=[c[0] for c in SAELENS])
def test_saelens_cfg_is_validated(run, capsys, change, words):
    folder = run.sae_saelens_dir
    _cfg(folder, change)
    err = refused(capsys, lambda _: load_sae(folder))
    assert str(folder) in err and words in err and "re-run train_sae.py" in err, err


# ------------------------------------------------------------------ item 4: labels
LABELS = [
    ("features.csv without its columns", "features_csv", lambda p: p.write_text("a,b\n1,2\n"),
     ["features.csv", "missing column(s)"]),
    ("features.csv with text scores", "features_csv",
     lambda p: pd.read_csv(p).assign(score="high").to_csv(p, index=False), ["features.csv", "'score' holds text"]),
    ("features.csv rows cut", "features_csv", lambda p: pd.read_csv(p).iloc[:5].to_csv(p, index=False),
     ["features.csv", "one row per unit 0..31", "5 rows"]),
    ("neurons.csv with an unknown status", "neurons_csv",
     lambda p: pd.read_csv(p).assign(status="zombie").to_csv(p, index=False), ["neurons.csv", "'zombie'"]),
    ("features.csv binary", "features_csv", lambda p: p.write_bytes(bytes(range(256)) * 8), ["features.csv"]),
    ("labels.pt float inputs", "labels_cache",
     lambda p: _edit_torch(p, lambda c: c.__setitem__("inputs", c["inputs"].float())), ["labels.pt", "inputs"]),
    ("labels.pt inputs out of range", "labels_cache",
     lambda p: _edit_torch(p, lambda c: c["inputs"].__setitem__((0, 4), 9)), ["labels.pt", "pointers 0..3"]),
    ("labels.pt F1 of another width", "labels_cache",
     lambda p: _edit_torch(p, lambda c: c.__setitem__("feature_f1", c["feature_f1"][:, :5])), ["labels.pt", "feature_f1"]),
    ("labels.pt concept names not a list", "labels_cache",
     lambda p: _edit_torch(p, lambda c: c.__setitem__("concept_names", 5)), ["labels.pt", "concept_names"]),
]


@pytest.mark.parametrize("artifact,change,words", [c[1:] for c in LABELS], ids=[c[0] for c in LABELS])
def test_labels_are_validated(run, capsys, artifact, change, words):
    change(getattr(run, artifact))
    before = snapshot(run.root)
    err = refused(capsys, *stage(feature_probe, run))
    assert all(w in err for w in words) and "label_features.py" in err, err
    assert snapshot(run.root) == before


# ------------------------------------------------------------------ item 4: training checkpoints
def _swap_moment(c):
    first = next(iter(c["optimizer"]["state"].values()))
    first["exp_avg"] = torch.zeros(3)


CHECKPOINTS = [
    ("SAE: generator of the wrong size", "sae_checkpoint", lambda c: c.__setitem__("generator", torch.zeros(3, dtype=torch.uint8)),
     "generator"),
    ("SAE: generator a string", "sae_checkpoint", lambda c: c.__setitem__("generator", "abc"), "generator"),
    ("SAE: optimizer moment of the wrong shape", "sae_checkpoint", _swap_moment, "exp_avg"),
    ("SAE: optimizer a list", "sae_checkpoint", lambda c: c.__setitem__("optimizer", [1]), "optimizer"),
    ("SAE: optimizer lr a string", "sae_checkpoint",
     lambda c: c["optimizer"]["param_groups"][0].__setitem__("lr", "fast"), "lr"),
    ("SAE: step a string", "sae_checkpoint", lambda c: c.__setitem__("step", "10"), "step"),
    ("SAE: step past the end", "sae_checkpoint", lambda c: c.__setitem__("step", 10**9), "out of range"),
    ("SAE: order not a permutation", "sae_checkpoint",
     lambda c: c["source"].__setitem__("perm", torch.zeros_like(c["source"]["perm"])), "permutation"),
    ("MLP: generator of the wrong size", "mlp_checkpoint", lambda c: c.__setitem__("generator", torch.zeros(3, dtype=torch.uint8)),
     "generator"),
    ("MLP: optimizer moment of the wrong shape", "mlp_checkpoint", _swap_moment, "exp_avg"),
    ("MLP: scheduler garbage", "mlp_checkpoint", lambda c: c.__setitem__("scheduler", {"total_steps": "x"}), "scheduler"),
    ("MLP: epoch a float", "mlp_checkpoint", lambda c: c.__setitem__("epoch", 1.5), "epoch"),
    ("MLP: best weights of another shape", "mlp_checkpoint",
     lambda c: c["best"]["state_dict"].__setitem__("fc1.bias", torch.zeros(3)), "best.state_dict"),
]


@pytest.mark.parametrize("artifact,change,words", [c[1:] for c in CHECKPOINTS], ids=[c[0] for c in CHECKPOINTS])
def test_training_checkpoints_are_validated_before_use(run, capsys, artifact, change, words):
    path = getattr(run, artifact)
    # (an MLP checkpoint records its --run-dir among its settings: this copy's, so only `change` differs)
    _edit_torch(path, lambda c: (change(c), artifact == "mlp_checkpoint" and c["train_config"].__setitem__("run_dir", str(run.root))))
    module, flags = (train_sae, SAE_FLAGS) if artifact == "sae_checkpoint" else (train_mlp, MLP_FLAGS)
    before = snapshot(run.root)
    err = refused(capsys, *stage(module, run, "--resume", *flags))
    assert str(path) in err and words in err and "not a usable" in err, err
    assert snapshot(run.root) == before


def test_an_intact_sae_checkpoint_still_resumes(run):
    """Control: the checks above refuse damage, not the checkpoints the trainer writes."""
    m = train_sae.main(train_sae.parse_args(["--run-dir", str(run.root), "--quiet", "--resume", *SAE_FLAGS]))
    assert m["steps"] == 40 and not run.sae_checkpoint.exists()


# ------------------------------------------------------------------ item 4: metrics.json is rebuilt, never fatal
METRICS = [
    ("not JSON", "{not json", "not valid JSON"),
    ("a list", "[1, 2]", "a JSON list"),
    ("nested 100,000 deep", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("sections not objects", json.dumps({"sae": 5, "mlp": [1]}), "section(s) ['sae', 'mlp'] not JSON objects"),
]


@pytest.mark.parametrize("text,words", [c[1:] for c in METRICS], ids=[c[0] for c in METRICS])
def test_a_damaged_metrics_json_is_set_aside_and_rebuilt(tmp_path, capsys, text, words):
    path = tmp_path / "metrics.json"
    path.write_text(text)
    assert read_metrics(path) == {}
    update_metrics(path, "harvest", {"n": 5})
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1 and words in err and "metrics.json.damaged" in err, err
    assert json.loads(path.read_text()) == {"harvest": {"n": 5}}
    assert (tmp_path / "metrics.json.damaged").read_text() == text


def test_wrongly_typed_metrics_values_are_shown_as_missing(run, capsys):
    m = json.loads(run.metrics.read_text())
    m["mlp"]["test"] = "x"
    m["sae"].update(fvu="low", config=[1])
    m["interpretability"].update(features_monosemantic_share="most", ramps_found=[1], features_alive=3.5)
    m["harvest"] = ["not", "a", "section"]
    run.metrics.write_text(json.dumps(m))
    run_main(run_summary.main, run_summary.parse_args(["--run-dir", str(run.root)]))
    out = capsys.readouterr()
    assert "Traceback" not in out.err and out.err.count("\n") == 1 and "'harvest'" in out.err, out.err
    assert "SAE      l0" in out.out and "MLP      test" not in out.out and "Explained" not in out.out, out.out
    run_main(*stage(feature_probe, run))        # the labels' section with wrong types: still probes
    assert "input [8, 9, 5, 1, 3, 2, 9, 4, 7, 1]" in capsys.readouterr().out
