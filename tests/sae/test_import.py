"""sae.foreign + import_sae.py: SAEs saved by SAELens or dictionary_learning join a run.

Each folder is written here with hand-made weights in the library's own layout (names, shapes and
cfg/config keys read from SAELens 6.54's sae_lens/saes/*.py and dictionary_learning's
dictionary.py and trainers/*.py), and the imported SAE's encode and decode are checked against the
library's formulas written out below, independently of the readers under test.
"""
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import import_sae
from common.cli import run_main
from common.io import PipelineError, read_metrics
from sae.foreign import read_foreign
from sae.sae_definition import load_sae

D_IN, D_SAE, K = 64, 96, 5      # D_IN: the tiny run's hidden layer
TOL = dict(atol=1e-5, rtol=1e-5)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _h(n=400, seed=7):
    return torch.rand(n, D_IN, generator=_gen(seed)) * 2            # non-negative, like a ReLU layer


# --- SAELens: the cfg.json save_inference_model writes and its encode/decode ----------------------
def saelens_folder(folder, arch, seed=0, apply_b_dec=True, rescale=False, free_norms=True, **cfg_extra):
    g = _gen(seed)
    t = {"W_enc": torch.randn(D_IN, D_SAE, generator=g) * 0.2, "b_enc": torch.randn(D_SAE, generator=g) * 0.1,
         "W_dec": torch.randn(D_SAE, D_IN, generator=g) * (0.5 if free_norms else 1.0),
         "b_dec": torch.randn(D_IN, generator=g) * 0.1}
    if not free_norms:
        t["W_dec"] /= t["W_dec"].norm(dim=1, keepdim=True)
    else:   # decoder norms spread over 0.2 .. 3: a fold that forgot them shows
        t["W_dec"] *= (torch.rand(D_SAE, 1, generator=g) * 2.8 + 0.2) / t["W_dec"].norm(dim=1, keepdim=True)
    if arch == "jumprelu":
        t["threshold"] = torch.rand(D_SAE, generator=g) * 0.3 + 0.01
    if arch == "gated":   # SAELens's GatedSAE has no b_enc: b_gate, b_mag, r_mag
        t["b_gate"] = t.pop("b_enc")
        t["b_mag"] = torch.randn(D_SAE, generator=g) * 0.1
        t["r_mag"] = torch.randn(D_SAE, generator=g) * 0.3
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": apply_b_dec,
           "normalize_activations": "none", "reshape_activations": "none", "architecture": arch,
           "metadata": {"sae_lens_version": "6.54.0", "sae_lens_training_version": "6.54.0",
                        "hook_name": "hook_hidden", "model_name": "mlp"}, **cfg_extra}
    if arch == "topk":
        cfg.update(k=K, rescale_acts_by_decoder_norm=rescale)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file(t, str(folder / "sae_weights.safetensors"))
    return cfg, t


def saelens_reference(cfg, t, h):
    """SAELens 6.54: sae_in = h - b_dec (apply_b_dec_to_input); hidden_pre = sae_in @ W_enc + b_enc;
    topk: * ||W_dec_i|| when rescaling, top k then relu, decode (f / ||W_dec_i||) @ W_dec + b_dec;
    jumprelu: relu(pre) * (pre > threshold); standard: relu."""
    sae_in = h - t["b_dec"] if cfg["apply_b_dec_to_input"] else h
    if cfg["architecture"] == "gated":   # gated_sae.py: gate (pre > 0) times relu of the magnitude path
        f = (sae_in @ t["W_enc"] + t["b_gate"] > 0).float() * F.relu(sae_in @ (t["W_enc"] * t["r_mag"].exp()) + t["b_mag"])
        return f, f @ t["W_dec"] + t["b_dec"]
    pre = sae_in @ t["W_enc"] + t["b_enc"]
    norms = t["W_dec"].norm(dim=-1)
    arch = cfg["architecture"]
    if arch == "standard":
        f = F.relu(pre)
    elif arch == "jumprelu":
        f = F.relu(pre) * (pre > t["threshold"])
    else:
        if cfg["rescale_acts_by_decoder_norm"]:
            pre = pre * norms
        top = pre.topk(cfg["k"], dim=-1)
        f = torch.zeros_like(pre).scatter_(-1, top.indices, top.values.relu())
    g = f / norms if arch == "topk" and cfg["rescale_acts_by_decoder_norm"] else f
    return f, g @ t["W_dec"] + t["b_dec"]


SAELENS_CASES = {
    "standard free norms": dict(arch="standard"),
    "topk rescale false": dict(arch="topk", free_norms=False),
    "topk rescale true, free norms": dict(arch="topk", rescale=True),
    "topk rescale true, unit norms": dict(arch="topk", rescale=True, free_norms=False),
    "jumprelu": dict(arch="jumprelu"),
    "jumprelu no b_dec before encoder": dict(arch="jumprelu", apply_b_dec=False),
    "standard no b_dec before encoder": dict(arch="standard", apply_b_dec=False),
    "gated": dict(arch="gated"),
    "gated no b_dec before encoder": dict(arch="gated", apply_b_dec=False),
}


@pytest.mark.parametrize("case", SAELENS_CASES)
def test_saelens_folder_encodes_and_decodes_as_saelens(tmp_path, case):
    cfg, t = saelens_folder(tmp_path / "f", **SAELENS_CASES[case])
    sae, origin = read_foreign(tmp_path / "f")
    h = _h()
    f_ref, h_hat_ref = saelens_reference(cfg, t, h)
    with torch.no_grad():
        f = sae.encode(h)
        torch.testing.assert_close(f, f_ref, **TOL)
        torch.testing.assert_close(sae.decode(f), h_hat_ref, **TOL)
    assert (f_ref > 0).any() and (f_ref == 0).any()               # the check can fail both ways
    assert origin["library"] == "sae_lens" and origin["version"] == "6.54.0" and origin["architecture"] == cfg["architecture"]
    assert set(origin["files"]) == {"cfg.json", "sae_weights.safetensors"}
    with torch.no_grad():   # and the SAELens folder the run keeps of it gives it back
        from sae.saelens import load_saelens, save_saelens
        save_saelens(sae, tmp_path / "back")
        torch.testing.assert_close(load_saelens(tmp_path / "back").encode(h), f, **TOL) and all(len(v) == 64 for v in origin["files"].values())


def test_rescaled_topk_selects_by_decoder_norm(tmp_path):
    """Without the fold a TopK with rescale_acts_by_decoder_norm would pick other latents: the test above
    means something only if the norms change the selection here."""
    cfg, t = saelens_folder(tmp_path / "f", arch="topk", rescale=True)
    f_ref, _ = saelens_reference(cfg, t, _h())
    f_plain, _ = saelens_reference({**cfg, "rescale_acts_by_decoder_norm": False}, t, _h())
    assert not torch.equal(f_ref > 0, f_plain > 0)


# --- dictionary_learning: ae.pt state dicts and config.json -----------------------------------------
def dl_folder(folder, dict_class, seed=0, threshold=0.05, **trainer_extra):
    g = _gen(seed)
    W = torch.randn(D_SAE, D_IN, generator=g) * 0.2              # nn.Linear(d_in, d_sae).weight
    Wd = torch.randn(D_IN, D_SAE, generator=g) * (torch.rand(1, D_SAE, generator=g) + 0.3) * 0.3   # nn.Linear(d_sae, d_in).weight
    b = torch.randn(D_SAE, generator=g) * 0.1
    bd = torch.randn(D_IN, generator=g) * 0.1
    k = {"k": torch.tensor(K, dtype=torch.int)}
    if dict_class == "AutoEncoder":
        sd = {"bias": bd, "encoder.weight": W, "encoder.bias": b, "decoder.weight": Wd}
    elif dict_class == "AutoEncoderNew":
        sd = {"encoder.weight": W, "encoder.bias": b, "decoder.weight": Wd, "decoder.bias": bd}
    elif dict_class in ("AutoEncoderTopK", "BatchTopKSAE"):
        sd = {**k, "threshold": torch.tensor(threshold), "decoder.weight": Wd, "encoder.weight": W, "encoder.bias": b,
              "b_dec": bd}
    elif dict_class == "MatryoshkaBatchTopKSAE":
        sd = {**k, "threshold": torch.tensor(threshold), "group_sizes": torch.tensor([16, 32, 48]), "W_enc": W.T.contiguous(),
              "b_enc": b, "W_dec": Wd.T.contiguous(), "b_dec": bd}
    elif dict_class == "GatedAutoEncoder":
        sd = {"decoder_bias": bd, "encoder.weight": W, "r_mag": torch.randn(D_SAE, generator=g) * 0.3, "gate_bias": b,
              "mag_bias": torch.randn(D_SAE, generator=g) * 0.1, "decoder.weight": Wd}
    else:   # JumpReluAutoEncoder
        sd = {"W_enc": W.T.contiguous(), "b_enc": b, "W_dec": Wd.T.contiguous(), "b_dec": bd,
              "threshold": torch.rand(D_SAE, generator=g) * 0.2 + 0.01}
    trainer = {"trainer_class": "X", "dict_class": dict_class, "activation_dim": D_IN, "dict_size": D_SAE,
               "lr": 1e-3, "layer": 2, "lm_name": "mlp", "submodule_name": None, **trainer_extra}
    if "k" in sd:
        trainer["k"] = K
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"trainer": trainer, "buffer": {"d_submodule": D_IN}}))
    torch.save(sd, folder / "ae.pt")
    return sd


def dl_reference(dict_class, sd, h):
    """dictionary_learning's encode/decode as `utils.load_dictionary` returns the module."""
    if dict_class == "AutoEncoder":          # from_pretrained(normalize_decoder=True)
        n = sd["decoder.weight"].norm(dim=0)                          # [d_sae]
        W, b, Wd = sd["encoder.weight"] * n[:, None], sd["encoder.bias"] * n, sd["decoder.weight"] / n
        f = F.relu((h - sd["bias"]) @ W.T + b)
        return f, f @ Wd.T + sd["bias"]
    if dict_class == "AutoEncoderNew":
        f = F.relu(h @ sd["encoder.weight"].T + sd["encoder.bias"])
        return f, f @ sd["decoder.weight"].T + sd["decoder.bias"]
    if dict_class in ("AutoEncoderTopK", "BatchTopKSAE"):
        post = F.relu((h - sd["b_dec"]) @ sd["encoder.weight"].T + sd["encoder.bias"])
        if dict_class == "AutoEncoderTopK":
            top = post.topk(int(sd["k"]), dim=-1)
            f = torch.zeros_like(post).scatter_(-1, top.indices, top.values)
        else:
            f = post * (post > sd["threshold"])
        return f, f @ sd["decoder.weight"].T + sd["b_dec"]
    if dict_class == "MatryoshkaBatchTopKSAE":
        post = F.relu((h - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"])
        f = post * (post > sd["threshold"])
        return f, f @ sd["W_dec"] + sd["b_dec"]
    if dict_class == "GatedAutoEncoder":
        x_enc = (h - sd["decoder_bias"]) @ sd["encoder.weight"].T
        f = (x_enc + sd["gate_bias"] > 0).float() * F.relu(sd["r_mag"].exp() * x_enc + sd["mag_bias"])
        return f, f @ sd["decoder.weight"].T + sd["decoder_bias"]
    pre = h @ sd["W_enc"] + sd["b_enc"]                               # JumpReluAutoEncoder, apply_b_dec_to_input False
    f = F.relu(pre * (pre > sd["threshold"]))
    return f, f @ sd["W_dec"] + sd["b_dec"]


DL_CASES = {"AutoEncoder": "relu", "AutoEncoderNew": "relu", "AutoEncoderTopK": "topk", "BatchTopKSAE": "batchtopk",
            "MatryoshkaBatchTopKSAE": "matryoshka", "JumpReluAutoEncoder": "jumprelu", "GatedAutoEncoder": "gated"}


@pytest.mark.parametrize("dict_class", DL_CASES)
def test_dictionary_learning_folder_encodes_and_decodes_as_the_library(tmp_path, dict_class):
    sd = dl_folder(tmp_path / "f", dict_class)
    sae, origin = read_foreign(tmp_path / "f")
    assert sae.cfg.architecture == DL_CASES[dict_class] and origin["library"] == "dictionary_learning"
    h = _h()
    f_ref, h_hat_ref = dl_reference(dict_class, sd, h)
    with torch.no_grad():
        f = sae.encode(h)
        torch.testing.assert_close(f, f_ref, **TOL)
        torch.testing.assert_close(sae.decode(f), h_hat_ref, **TOL)
    assert (f_ref > 0).any() and (f_ref == 0).any()
    if dict_class == "MatryoshkaBatchTopKSAE":
        assert sae.cfg.prefixes == (16, 48, 96)


def test_batchtopk_threshold_never_set_encodes_as_relu_like_the_library(tmp_path):
    sd = dl_folder(tmp_path / "f", "BatchTopKSAE", threshold=-1.0)
    sae, _ = read_foreign(tmp_path / "f")
    f_ref, _ = dl_reference("BatchTopKSAE", sd, _h())
    torch.testing.assert_close(sae.encode(_h()).detach(), f_ref, **TOL)


# --- the stage: evaluate and write a named SAE -------------------------------------------------------
def _import(run, folder, name="ext", *extra):
    return import_sae.main(import_sae.parse_args(["--run-dir", str(run.root), "--from", str(folder), "--name", name,
                                                  "--quiet", "--n-eval", "100", *extra]))


def test_import_writes_a_named_sae_evaluated_like_a_trained_one(copy_run, tmp_path):
    run = copy_run()
    cfg, t = saelens_folder(tmp_path / "f", arch="topk", rescale=True)
    m = _import(run, tmp_path / "f", "saelens_topk_with_a_long_name")
    paths = run.for_sae("saelens_topk_with_a_long_name")
    section = read_metrics(run.metrics)[paths.section("sae")]
    for key in ("fvu", "l0", "dead", "dead_share", "dense_share", "spliced_exact_match", "spliced_mse", "mlp_exact_match",
                "n_eval", "config", "origin"):
        assert key in section, key
    assert "density_log10" not in section and len(m["density_log10"]) == D_SAE
    assert section["n_eval"] == 100 and section["origin"]["architecture"] == "topk"
    assert 0 < section["l0"] <= K
    # the same numbers as the project's evaluation gives for the same SAE on the same rows
    from mlp.activations import load_activations
    from mlp.mlp_definition import load_mlp
    from sae.metrics import evaluate_sae
    data, mlp = load_activations(run.activations), load_mlp(run.mlp)
    rows = slice(len(data["activations"]) - 100, None)
    again = evaluate_sae(load_sae(paths.sae), mlp, data["activations"][rows].float(), data["inputs"][rows],
                         data["targets"][rows].float())
    assert again["fvu"] == pytest.approx(section["fvu"], rel=1e-6) and again["spliced_mse"] == pytest.approx(section["spliced_mse"])
    assert load_sae(paths.sae_saelens_dir).cfg.k == K                  # its SAELens copy loads back
    assert "saelens_topk_with_a_long_name" in paths.sae_names()


# --- bad folders: one line, exit 2, nothing written --------------------------------------------------
def _edit_json(path, **changes):
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg))


def _huge_header(folder):
    """A cfg and a safetensors header claiming d_sae = 2**36 (offsets included), with no data behind them."""
    d_sae = 2 ** 36
    _edit_json(folder / "cfg.json", d_sae=d_sae)
    header, offset = {}, 0
    for name, shape in (("W_enc", [D_IN, d_sae]), ("b_enc", [d_sae]), ("W_dec", [d_sae, D_IN]), ("b_dec", [D_IN])):
        size = 4 * torch.Size(shape).numel()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    (folder / "sae_weights.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + b"\0" * 64)


def _weights(folder, fn):
    from safetensors.torch import load_file
    t = load_file(str(folder / "sae_weights.safetensors"))
    fn(t)
    save_file(t, str(folder / "sae_weights.safetensors"))


BAD_SAELENS = {
    "wrong d_in": (None, "wrong_d_in", "d_in = 128"),
    "unknown architecture": (lambda d: _edit_json(d / "cfg.json", architecture="temporal"), None, "'temporal'"),
    "training checkpoint": (lambda d: _edit_json(d / "cfg.json", architecture="batchtopk"), None, "save_inference_model"),
    "missing tensor": (lambda d: _weights(d, lambda t: t.pop("b_enc")), None, "missing ['b_enc']"),
    "extra tensor": (lambda d: _weights(d, lambda t: t.update(extra=torch.zeros(3))), None, "unexpected ['extra']"),
    "non-finite": (lambda d: _weights(d, lambda t: t["W_enc"].__setitem__((0, 0), float("inf"))), None, "non-finite"),
    "shapes disagree": (lambda d: _edit_json(d / "cfg.json", d_sae=D_SAE + 1), None, "expected float"),
    "cfg not JSON": (lambda d: (d / "cfg.json").write_text("{'d_in': 64"), None, "not valid JSON"),
    "huge d_sae": (_huge_header, None, "GiB"),
    "other hook": (lambda d: _edit_json(d / "cfg.json", metadata={"sae_lens_version": "6.54.0",
                                                                  "hook_name": "blocks.3.hook_resid_post"}), None, "--any-hook"),
}


@pytest.mark.parametrize("case", BAD_SAELENS)
def test_bad_saelens_folder_is_refused_in_one_line_and_nothing_is_written(copy_run, tmp_path, capsys, case):
    run = copy_run()
    folder = tmp_path / "f"
    damage, kind, words = BAD_SAELENS[case]
    saelens_folder(folder, "topk")
    if kind == "wrong_d_in":
        _edit_json(folder / "cfg.json", d_in=D_IN * 2)
        _weights(folder, lambda t: t.update(W_enc=torch.zeros(2 * D_IN, D_SAE), W_dec=torch.zeros(D_SAE, 2 * D_IN),
                                            b_dec=torch.zeros(2 * D_IN)))
    else:
        damage(folder)
    before = run.metrics.read_bytes() if run.metrics.exists() else None
    with pytest.raises(SystemExit) as e:
        run_main(import_sae.main, import_sae.parse_args(["--run-dir", str(run.root), "--from", str(folder), "--name", "ext",
                                                         "--quiet"]))
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and words in err, err
    assert not (run.root / "sae" / "ext").exists()
    assert (run.metrics.read_bytes() if run.metrics.exists() else None) == before


BAD_DL = {
    "unknown dict_class": (lambda d: _edit_json(d / "config.json", trainer={"dict_class": "IdentityDict",
                                                                            "activation_dim": D_IN, "dict_size": D_SAE}),
                           "'IdentityDict' has no equivalent"),
    "config not JSON": (lambda d: (d / "config.json").write_text("nope"), "not valid JSON"),
    "config nested 100,000 deep": (lambda d: (d / "config.json").write_text("[" * 100_000 + "]" * 100_000),
                                   "nested too deeply"),
    "huge dict_size": (lambda d: _edit_json(d / "config.json", trainer={**json.loads((d / "config.json").read_text())["trainer"],
                                                                        "dict_size": 2 ** 36}), "GiB"),
    "shapes disagree": (lambda d: _edit_json(d / "config.json", trainer={**json.loads((d / "config.json").read_text())["trainer"],
                                                                         "dict_size": D_SAE + 1}), "expected [97, 64]"),
    "non-finite": (lambda d: torch.save({**torch.load(d / "ae.pt"), "b_dec": torch.full((D_IN,), float("nan"))}, d / "ae.pt"),
                   "non-finite"),
    "missing tensor": (lambda d: torch.save({k: v for k, v in torch.load(d / "ae.pt").items() if k != "b_dec"}, d / "ae.pt"),
                       "missing ['b_dec']"),
    "k disagrees": (lambda d: torch.save({**torch.load(d / "ae.pt"), "k": torch.tensor(K + 1)}, d / "ae.pt"), "k = 6"),
    "training backup": (lambda d: torch.save({"ae": torch.load(d / "ae.pt"), "step": 3}, d / "ae.pt"), "training backup"),
    "more data than the config says": (lambda d: torch.save({**torch.load(d / "ae.pt"), "pad": torch.zeros(4_000_000)},
                                                             d / "ae.pt"), "more than"),
}


@pytest.mark.parametrize("case", BAD_DL)
def test_bad_dictionary_learning_folder_is_refused_naming_the_file(tmp_path, case):
    dl_folder(tmp_path / "f", "AutoEncoderTopK")
    damage, words = BAD_DL[case]
    damage(tmp_path / "f")
    with pytest.raises(PipelineError) as e:
        read_foreign(tmp_path / "f")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "f") in msg and words in msg and "train_sae.py" not in msg, msg


def test_not_a_folder_of_either_library(tmp_path):
    (tmp_path / "f").mkdir()
    with pytest.raises(PipelineError, match="neither a SAELens folder"):
        read_foreign(tmp_path / "f")


# --- the real libraries, when installed (benchmarks/check_import.py runs the same in their own venv) ---
def test_real_libraries_agree_with_the_imported_sae(tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="sae-lens not installed (pip install -e '.[saelens]' in a venv "
                                                      "of its own: benchmarks/check_import.py)")
    from benchmarks.check_import import compare_all
    diffs = compare_all(tmp_path, d_in=D_IN, d_sae=D_SAE, h=_h(300))
    assert len(diffs) >= 6 and max(rel for _, rel in diffs.values()) < 1e-5, diffs
    assert sae_lens.__version__.startswith("6.")


def test_summary_table_fits_any_name_and_cuts_long_ones_visibly():
    from analysis.compare import comparison_lines, origin_text, sae_row
    names = ["default", "saelens_topk25_topk_256", "x" * 64]
    rows = [sae_row(n, {"config": {"architecture": "topk", "d_sae": 256}, "fvu": 0.01, "l0": 16.0}, {}) for n in names]
    lines = comparison_lines({"saes": rows, "neurons": {"explained_share": None, "alive": None, "dead": None,
                                                       "ramps_found": None}})
    starts = {line.index("topk 256") for line in lines[1:4]}
    assert len(starts) == 1                                           # every row's dictionary column starts alike
    assert "saelens_topk25_topk_256 " in lines[2] and "x" * 25 + "..." in lines[3] and "x" * 26 not in lines[3]
    assert lines[0].index("dictionary") == starts.pop()
    assert origin_text({"fvu": 1.0}) == "trained here"
    o = {"origin": {"library": "sae_lens", "version": "6.54.0", "architecture": "topk",
                    "files": {"cfg.json": "a" * 64, "sae_weights.safetensors": "b" * 64}}}
    assert origin_text(o) == "sae_lens 6.54.0 topk (sae_weights.safetensors bbbbbbbbbbbb)"


def test_a_joined_sae_is_labelled_and_compared_like_any_other(copy_run, tmp_path):
    import label_features
    from analysis.compare import comparison
    run = copy_run()
    dl_folder(tmp_path / "f", "BatchTopKSAE")
    _import(run, tmp_path / "f", "dl_batchtopk")
    label_features.main(label_features.parse_args(["--run-dir", str(run.root), "--sae", "dl_batchtopk",
                                                   "--n-inputs", "2000", "--quiet"]))
    row = next(r for r in comparison(run)["saes"] if r["sae"] == "dl_batchtopk")
    assert row["labelled"] and row["architecture"] == "batchtopk" and row["origin"].startswith("dictionary_learning BatchTopKSAE")


@pytest.mark.parametrize("name,words", [("default", "the run's default SAE"), ("9x", "plain identifier"),
                                        ("saelens", "taken by a file or folder")])
def test_names_the_run_cannot_give_are_refused(copy_run, tmp_path, name, words):
    run = copy_run()
    saelens_folder(tmp_path / "f", "standard")
    with pytest.raises(PipelineError, match=words):
        _import(run, tmp_path / "f", name)
    assert not (run.root / "sae" / name).exists()


def test_worked_example_trains_joins_and_labels_with_the_real_libraries(copy_run, capsys):
    pytest.importorskip("sae_lens", reason="sae-lens not installed (the saelens extra: benchmarks/check_import.py)")
    pytest.importorskip("dictionary_learning", reason="dictionary-learning not installed (the saelens extra)")
    from benchmarks.check_import import worked_example
    run = copy_run()
    worked_example(str(run.root), steps=20, libraries=["saelens", "dictionary_learning"])
    metrics = read_metrics(run.metrics)
    for name, library in (("saelens_topk", "sae_lens"), ("dl_batchtopk", "dictionary_learning")):
        assert metrics[f"sae:{name}"]["origin"]["library"] == library and f"interpretability:{name}" in metrics
    assert "saelens_topk" in capsys.readouterr().out
