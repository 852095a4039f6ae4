"""Artifacts that know what they were made from, and groups written whole (issue 20, parts 1 and 2).

Real faults on tiny runs: copied and mixed runs, a retrained upstream, a resume after re-harvesting, and
a failure in the middle of a group write. Each is refused with one `error:` line (exit 2) naming both
files and the stage to re-run, with nothing written; or the old group is left as it was.
"""
import errno
import os
import shutil

import pandas as pd
import pytest

import feature_probe
import feature_reports
import harvest_activations
import label_features
import train_mlp
import train_sae
from common.cli import run_main
from common.paths import RunPaths
from tests.helpers import TINY, TINY_SAE_FLAGS, tiny_sae_flags

N = ["--n-inputs", "1000"]


def stage(module, run: RunPaths, *flags):
    return module.main(module.parse_args(["--run-dir", str(run.root), "--quiet", *flags]))


def refused(module, run: RunPaths, flags, capsys) -> str:
    """Run a stage as a user does (the error boundary included); its one stderr line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_main(module.main, module.parse_args(["--run-dir", str(run.root), "--quiet", *flags]))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def labelled(tiny_run, tmp_path_factory) -> RunPaths:
    """The tiny run with a default SAE (32 features) and a named one ("small", 16), both labelled."""
    run = RunPaths(tmp_path_factory.mktemp("prov") / "run")
    shutil.copytree(tiny_run.root, run.root)
    stage(train_sae, run, *TINY_SAE_FLAGS)
    stage(train_sae, run, *TINY_SAE_FLAGS, "--d-sae", "16", "--name", "small")
    stage(label_features, run, "--sae", "all", *N)
    return run


@pytest.fixture
def copy(labelled, tmp_path):
    def _copy() -> RunPaths:
        shutil.copytree(labelled.root, tmp_path / "run")
        return RunPaths(tmp_path / "run")
    return _copy


def test_cp_r_of_a_run_whose_sae_was_retrained_refuses_the_old_labels(copy, tmp_path, capsys):
    """Old labels beside a retrained SAE, then `cp -r` (every file gets a new time, the labels last):
    the probe and the reports refuse, naming labels.pt, the SAE and label_features.py."""
    run = copy()
    stage(train_sae, run, *TINY_SAE_FLAGS, "--seed", "1")           # retrained; the labels are not
    moved = RunPaths(tmp_path / "copied")
    shutil.copytree(run.root, moved.root)                            # a plain cp -r: times decide nothing
    for p in (moved.features_csv, moved.neurons_csv, moved.labels_cache):
        os.utime(p)
    before = snapshot(moved.root)
    for module in (feature_probe, feature_reports):
        err = refused(module, moved, [], capsys)
        assert f"{moved.labels_cache}: not made from {moved.sae}" in err and "run label_features.py" in err, err
    assert snapshot(moved.root) == before
    stage(label_features, moved, *N)                                 # the remedy it names works
    assert stage(feature_probe, moved)["inputs"]


def test_labels_of_a_larger_sae_copied_beside_a_smaller_one_are_refused(copy, capsys):
    run = copy()
    small = run.for_sae("small")
    for p in ("features_csv", "neurons_csv", "labels_cache"):     # the 32-feature SAE's labels over the 16's
        shutil.copy2(getattr(run, p), getattr(small, p))
    err = refused(feature_probe, run, ["--sae", "small"], capsys)
    assert f"{small.labels_cache}: not made from {small.sae}" in err and "--sae small" in err, err


def test_a_table_copied_from_another_labelling_is_refused(copy, capsys):
    """features.csv of one SAE beside labels.pt of another: the CSV is not the one written with labels.pt."""
    run = copy()
    table = pd.read_csv(run.features_csv)
    shutil.copy2(run.for_sae("small").features_csv, run.features_csv)
    err = refused(feature_probe, run, [], capsys)          # (its 16 rows are refused before its digest is read)
    assert str(run.features_csv) in err and "label_features.py" in err, err
    table.loc[0, "density"] = table.loc[0, "density"] + 0.01   # the same shape, one number changed:
    table.to_csv(run.features_csv, index=False)                 # only its digest can tell
    err = refused(feature_probe, run, [], capsys)
    assert str(run.features_csv) in err and "not the file written with it" in err and "label_features.py" in err, err


def test_a_retrained_mlp_refuses_the_sae_and_activations_made_from_the_old_one(copy, capsys):
    """After the MLP is retrained (another seed) and nothing else: labelling the SAE, which was trained on
    the old MLP's layer, is refused; so is training an SAE on the old MLP's activations."""
    run = copy()
    stage(train_mlp, run, f"--d-mlp={TINY['d_mlp']}", f"--d-hidden={TINY['d_hidden']}", f"--epochs={TINY['epochs']}",
          f"--batch-size={TINY['batch_size']}", "--seed", "1")
    before = snapshot(run.root)
    err = refused(label_features, run, N, capsys)
    assert f"{run.sae}: not made from {run.mlp}" in err and "train_sae.py" in err, err
    err = refused(train_sae, run, TINY_SAE_FLAGS, capsys)
    assert f"{run.activations}: not made from {run.mlp}" in err and "run harvest_activations.py" in err, err
    err = refused(feature_probe, run, [], capsys)
    assert f"{run.sae}: not made from {run.mlp}" in err, err
    assert snapshot(run.root) == before


def test_resume_after_reharvesting_is_refused(copy, monkeypatch, capsys):
    """A training checkpoint of other data: --resume refuses it (naming the checkpoint and the
    activations), and resumes it when the data is the same."""
    run = copy()
    flags = [*TINY_SAE_FLAGS, "--checkpoint-every", "10", "--name", "ck"]

    def crash(*a, **k):       # the run stops before its final write: its checkpoint stays
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(train_sae, "write_saes", crash)
        with pytest.raises(KeyboardInterrupt):
            stage(train_sae, run, *flags)
    ckpt = run.for_sae("ck").sae_checkpoint
    assert ckpt.exists()
    kept = ckpt.read_bytes()
    stage(harvest_activations, run, "--n-samples", "3000")          # re-harvested: other activations
    err = refused(train_sae, run, [*flags, "--resume"], capsys)
    assert f"{ckpt}: not made from mlp_activations.pt" in err and "delete it" in err, err
    assert ckpt.read_bytes() == kept and not run.for_sae("ck").sae.exists()


def test_resume_of_the_same_data_continues(copy, monkeypatch):
    run = copy()
    flags = [*TINY_SAE_FLAGS, "--checkpoint-every", "10", "--name", "ck"]
    with monkeypatch.context() as m:
        m.setattr(train_sae, "write_saes", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            stage(train_sae, run, *flags)
    assert stage(train_sae, run, *flags, "--resume")["steps"] == 40
    assert not run.for_sae("ck").sae_checkpoint.exists()


def test_altered_weights_with_the_old_record_are_refused(copy, capsys):
    import torch
    run = copy()
    ckpt = torch.load(run.sae, weights_only=True)
    ckpt["state_dict"]["W_dec"][0, 0] += 1.0
    torch.save(ckpt, run.sae)
    err = refused(feature_probe, run, [], capsys)
    assert str(run.sae) in err and "differ from those recorded" in err and "train_sae.py" in err, err


# ------------------------------------------------------------------ groups written whole

def _disk_full_on(module, name, monkeypatch, after: int = 0):
    """Make `module.name` fail like a full disk on its call number `after` + 1 (earlier calls work),
    naming the file it was writing (its first argument that is a path), as open() does."""
    real, calls = getattr(module, name), []

    def failing(*a, **k):
        calls.append(1)
        if len(calls) > after:
            path = next((str(v) for v in a if isinstance(v, (str, os.PathLike)) and os.sep in str(v)), None)
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(*a, **k)
    monkeypatch.setattr(module, name, failing)


def test_an_sae_whose_saelens_folder_cannot_be_written_leaves_the_old_sae(copy, monkeypatch, capsys):
    import sae.saelens
    run = copy()
    before = snapshot(run.root)
    _disk_full_on(sae.saelens, "save_file", monkeypatch)
    err = refused(train_sae, run, [*TINY_SAE_FLAGS, "--seed", "1", "--name", "small", "--d-sae", "16"], capsys)
    assert "no space left" in err and "saelens" in err, err
    assert snapshot(run.root) == before                              # the .pth, the folder and metrics.json


def test_a_file_where_the_saelens_folder_goes_leaves_nothing_written(copy, capsys):
    run = copy()
    small = run.for_sae("small")
    shutil.rmtree(small.sae_saelens_dir)
    small.sae_saelens_dir.write_text("not a folder")
    before = snapshot(run.root)
    err = refused(train_sae, run, [*TINY_SAE_FLAGS, "--seed", "1", "--name", "small", "--d-sae", "16"], capsys)
    assert "is a file, not a folder" in err, err
    assert snapshot(run.root) == before


def test_a_sweep_whose_second_member_fails_writes_none(copy, monkeypatch, capsys):
    run = copy()
    before = snapshot(run.root)
    real, calls = train_sae.train_and_evaluate, []

    def diverge_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise train_sae.PipelineError("SAE training ended with non-finite W_enc; lower --lr; nothing was written")
        return real(*a, **k)
    monkeypatch.setattr(train_sae, "train_and_evaluate", diverge_second)
    refused(train_sae, run, [*TINY_SAE_FLAGS, "--sweep", "k=2,3"], capsys)
    assert snapshot(run.root) == before and not (run.root / "sae" / "sweep_k_2").exists()


def test_labels_of_every_sae_are_written_whole(copy, monkeypatch, capsys):
    """--sae all: the second SAE's labelling fails (a full disk while writing its table): the first SAE's
    labels, the second's and metrics.json are all as they were."""
    run = copy()
    before = snapshot(run.root)
    _disk_full_on(pd.DataFrame, "to_csv", monkeypatch, after=4)     # default: 3 tables; small: 1 then fail
    err = refused(label_features, run, ["--sae", "all", "--seed", "1", *N], capsys)
    assert "no space left" in err and "reports/small/neurons.csv" in err, err
    assert snapshot(run.root) == before


def test_report_pages_are_written_whole(copy, monkeypatch, capsys):
    import viz.build
    run = copy()
    stage(feature_reports, run, "--sae", "all")
    before = snapshot(run.root)
    _disk_full_on(viz.build, "write_trace_xlsx", monkeypatch, after=1)   # the second SAE's trace
    err = refused(feature_reports, run, ["--sae", "all"], capsys)
    assert "no space left" in err and "reports/small/circuit_trace_detailed.xlsx" in err, err
    assert snapshot(run.root) == before       # metrics.json too: its "reports" sections hold the new timings


def test_a_half_there_sae_is_never_listed(copy, capsys):
    run = copy()
    (run.root / "sae" / "empty").mkdir()                                      # a folder without its .pth
    lost = run.for_sae("lost")
    shutil.copytree(run.for_sae("small").sae_dir, lost.sae_dir)
    (lost.sae_saelens_dir / "sae_weights.safetensors").unlink()               # a broken SAELens folder
    out = stage(label_features, run, "--sae", "all", *N)
    assert sorted(out) == ["default", "small"]
    err = refused(label_features, run, ["--sae", "lost", *N], capsys)
    assert "--sae lost: not a whole SAE" in err and "sae_weights.safetensors is missing" in err, err
    assert "train_sae.py" in err and "--name lost" in err, err


def test_pages_show_what_they_were_made_from(copy):
    import torch
    run = copy()
    stage(feature_reports, run)
    mlp = torch.load(run.mlp, weights_only=True)["provenance"]["digest"]
    sae = torch.load(run.sae, weights_only=True)["provenance"]["digest"]
    labels = torch.load(run.labels_cache, weights_only=True)["provenance"]["digest"]
    for page in (run.index_html, run.heatmap_html, run.probe_html, run.training_html):
        text = page.read_text(encoding="utf-8")
        assert f"perfect_mlp.pth {mlp[:12]}" in text and f"sae_model.pth {sae[:12]}" in text, page
        assert f"labels.pt {labels[:12]}" in text, page
    assert labels[:12] in run.compare_html.read_text(encoding="utf-8")


def test_a_stream_sae_needs_no_activations(copy):
    """--stream: the SAE is made from the MLP alone, and labelling it checks that MLP."""
    import torch
    run = copy()
    streamed = run.for_sae("streamed")
    stage(train_sae, run, *tiny_sae_flags("topk"), "--stream", "--name", "streamed")
    made_from = torch.load(streamed.sae, weights_only=True)["provenance"]["made_from"]
    mlp = torch.load(run.mlp, weights_only=True)["provenance"]["digest"]
    assert made_from == {"mlp": {"file": "mlp/perfect_mlp.pth", "digest": mlp}}
    assert stage(label_features, run, "--sae", "streamed", *N)["d_sae"] == 32


def test_a_record_of_another_kind_or_none_is_refused(copy, capsys):
    """An SAE whose record was made with another digest, or that has none (written by hand or by an older
    version): refused as such, naming the stage that re-makes it."""
    import torch
    run = copy()
    ckpt = torch.load(run.sae, weights_only=True)
    ckpt["provenance"]["hash"] = "blake2b/128"
    torch.save(ckpt, run.sae)
    err = refused(feature_probe, run, [], capsys)
    assert str(run.sae) in err and "digests of another kind" in err and "train_sae.py" in err, err
    del ckpt["provenance"]
    torch.save(ckpt, run.sae)
    err = refused(label_features, run, N, capsys)
    assert str(run.sae) in err and "records no provenance" in err and "train_sae.py" in err, err
