"""Mutation benchmark: does the test suite notice when the science breaks?

Each mutant is one small, plausible bug (the kind a tired developer makes) in a core module: a wrong
denominator, an off-by-one threshold, a swapped stream, a lock removed. For each, the script copies
the working tree to a scratch folder once, applies the mutant, runs the tests relevant to the changed
module (`RELEVANT`, stopping at the first failure) and restores the file. A mutant is *caught* when
those tests fail, *survived* when they pass. The kill rate is caught / all; the README's test section
lists the survivors and why each is equivalent or left.

Before any mutant, every test set is run on the unmutated tree: a test set that already fails would
"catch" everything, so the script stops there. A mutant whose text is no longer in its file (the code
moved on) is reported as stale, not counted, and the script exits non-zero so the list is kept up to date.

    python benchmarks/mutations.py                 # every mutant (~15-25 min on two cores)
    python benchmarks/mutations.py --list          # the mutants and their test sets
    python benchmarks/mutations.py --only fvu-uncentred,dead-fired-once

Run by hand, not in CI: it runs the relevant part of the suite once per mutant.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the tests relevant to each module: its mirror in tests/ and the tests that exercise it through the stages
SAE_TESTS = ("tests/sae/test_architectures.py", "tests/sae/test_behaviour.py", "tests/sae/test_kernels.py",
             "tests/sae/test_training.py", "tests/sae/test_learning.py", "tests/sae/test_saelens.py")
METRIC_TESTS = ("tests/sae/test_metrics.py", "tests/sae/test_architectures.py")
EXPLAIN_TESTS = ("tests/analysis/test_explain.py", "tests/analysis/test_held_out.py", "tests/analysis/test_labels.py")
LABEL_TESTS = ("tests/analysis/test_held_out.py", "tests/analysis/test_labels.py", "tests/analysis/test_explain.py")
RELEVANT = {
    "sae/metrics.py": METRIC_TESTS,
    "analysis/explain.py": EXPLAIN_TESTS,
    "analysis/controls.py": ("tests/analysis/test_labels.py", "tests/analysis/test_splitting.py"),
    "analysis/labels.py": LABEL_TESTS,
    "analysis/causal.py": ("tests/analysis/test_causal.py",),
    "analysis/interchange.py": ("tests/analysis/test_causal.py",),
    "analysis/concepts.py": ("tests/analysis/test_concepts.py", "tests/analysis/test_explain.py"),
    "sae/splice.py": ("tests/sae/test_architectures.py", "tests/analysis/test_causal.py", "tests/sae/test_metrics.py"),
    "common/io.py": ("tests/common/", "tests/robustness/test_disk_and_concurrency.py", "tests/robustness/test_sane_artifacts.py"),
    "dataset/task.py": ("tests/dataset/test_dataset.py", "tests/analysis/test_labels.py", "tests/analysis/test_concepts.py"),
    "train_mlp.py": ("tests/mlp/",),
    "mlp/evaluate.py": ("tests/mlp/",),
    "mlp/activations.py": ("tests/mlp/",),
}


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str        # file, relative to the repository root
    old: str         # text to replace: must occur exactly once in the file
    new: str
    what: str        # the bug, in words

    @property
    def tests(self) -> tuple:
        return RELEVANT.get(self.path, SAE_TESTS if self.path.startswith("sae/") else ())


M = Mutant
MUTANTS = [
    # --- BatchTopK / Matryoshka -------------------------------------------------------------------
    M("batchtopk-threshold-max", "sae/batchtopk.py", "smallest = pre.detach()[keep].min()",
      "smallest = pre.detach()[keep].max()", "the inference threshold tracks the largest kept activation: fires on ~nothing"),
    M("batchtopk-momentum-swapped", "sae/batchtopk.py", "m * self.threshold + (1 - m) * smallest",
      "(1 - m) * self.threshold + m * smallest", "the running mean's momentum applied to the new value"),
    M("batchtopk-inference-topk", "sae/batchtopk.py", "if self.threshold < 0:\n",
      "if True:\n", "inference ignores the learned threshold (per-input top-k)"),
    M("batchtopk-batch-k", "sae/batchtopk.py", "min(pre.shape[0] * self.cfg.k, flat.numel())",
      "min(self.cfg.k, flat.numel())", "the batch keeps k entries in all instead of batch * k"),
    M("matryoshka-prefixes", "sae/matryoshka.py", "for m in self.cfg.prefixes[:-1])",
      "for m in self.cfg.prefixes[1:])", "prefix losses over the wrong prefixes (smallest never alone, whole twice)"),
    M("matryoshka-no-bdec", "sae/matryoshka.py", "f[:, :m] @ self.W_dec[:m] + self.b_dec",
      "f[:, :m] @ self.W_dec[:m]", "a prefix reconstructs without the decoder bias"),
    # --- TopK and AuxK ----------------------------------------------------------------------------
    M("topk-k-minus-one", "sae/topk.py", "indices = self.ranked(pre).topk(self.cfg.k, dim=-1, sorted=False).indices   # [batch, k]",
      "indices = self.ranked(pre).topk(self.cfg.k - 1, dim=-1, sorted=False).indices   # [batch, k]", "inference keeps k - 1 latents"),
    M("auxk-alive", "sae/topk.py", "self.ranked(pre).masked_fill(~dead, float(\"-inf\"))",
      "self.ranked(pre).masked_fill(dead, float(\"-inf\"))", "AuxK applied to the alive latents instead of the dead ones"),
    M("auxk-coeff-ignored", "sae/topk.py", "return mse + self.cfg.aux_coeff * aux, fired",
      "return mse + aux, fired", "the AuxK weight is ignored"),
    M("topk-fired-zero-values", "sae/topk.py", "fired[indices[values > 0]] = True",
      "fired[indices] = True", "a latent selected with value 0 counts as having fired (dead never counted)"),
    M("topk-train-no-relu", "sae/topk.py", "return F.relu(self.gather_pre(pre, indices, h)), indices, pre",
      "return self.gather_pre(pre, indices, h), indices, pre", "training activations not rectified"),
    # --- ReLU, JumpReLU, the shared maps ----------------------------------------------------------
    M("relu-l1-not-warmed", "sae/relu.py", "self.cfg.l1_coeff * sparsity_scale)",
      "self.cfg.l1_coeff)", "the L1 warm-up is ignored"),
    M("relu-kernel-l1-norms", "sae/kernels.py", "l1_term = (f @ norms).sum() / batch",
      "l1_term = f.sum() / batch", "the L1 penalty not weighted by decoder norms (forward only)"),
    M("relu-kernel-grad-active", "sae/kernels.py", "g_pre.mul_(active)                                            # through the ReLU",
      "pass", "the ReLU's gradient mask dropped"),
    M("relu-sparse-l1-norms", "sae/kernels.py", "l1_term = (values * norms[cols]).sum() / batch",
      "l1_term = values.sum() / batch", "the sparse path's L1 penalty not weighted by decoder norms (forward only)"),
    M("relu-sparse-grad-l1", "sae/kernels.py", "g_pre += c * norms[cols]",
      "g_pre += c", "the sparse path's L1 gradient not weighted by decoder norms"),
    M("relu-switch-inverted", "sae/kernels.py", "ctx.sparse = int(n_active) <= RELU_SPARSE_MAX_DENSITY * f.numel()",
      "ctx.sparse = int(n_active) > RELU_SPARSE_MAX_DENSITY * f.numel()", "sparse path on dense batches and dense on sparse"),
    M("jumprelu-kernel-width", "sae/jumprelu.py", "near = ((pre - theta).abs() < eps / 2).to(grad.dtype)                   # [batch, d_sae]",
      "near = ((pre - theta).abs() < eps).to(grad.dtype)                   # [batch, d_sae]", "the rectangle kernel twice as wide"),
    M("base-no-bdec-tie", "sae/base.py", "return (h - self.b_dec) @ self.W_enc + self.b_enc",
      "return h @ self.W_enc + self.b_enc", "the decoder bias no longer subtracted before the encoder"),
    M("base-unit-norm-dim", "sae/base.py", "self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)",
      "self.W_dec /= self.W_dec.norm(dim=0, keepdim=True).clamp_min(1e-8)", "decoder columns, not rows, normalised"),
    M("gatherpre-bdec-sign", "sae/kernels.py", "return None, None, None, g_W_enc_t.t(), g_b_enc, -(W_enc @ g_b_enc)",
      "return None, None, None, g_W_enc_t.t(), g_b_enc, W_enc @ g_b_enc", "the sparse encoder's b_dec gradient sign"),
    M("sparse-decode-grad", "sae/kernels.py", "g_W_dec = scatter_rows(indices, values, grad, W_dec.shape[0])",
      "g_W_dec = scatter_rows(indices, values.abs() + 1, grad, W_dec.shape[0])", "the sparse decoder's weight gradient"),
    # --- the training loop ------------------------------------------------------------------------
    M("train-dead-counter-steps", "sae/training.py", "since_fired += tc.batch_size",
      "since_fired += 1", "the dead window counted in steps, not inputs: nothing is ever dead"),
    M("train-fired-not-reset", "sae/training.py", "since_fired[fired] = 0\n        step += 1",
      "step += 1", "firing never resets the dead counter: everything goes dead"),
    M("train-no-unit-norm", "sae/training.py", "        optimizer.step()\n        if tc.unit_norm_decoder:\n            sae.unit_norm_decoder_()",
      "        optimizer.step()", "decoder rows drift off unit norm"),
    M("train-lr-warmup-zero", "sae/training.py", "warm = min(1.0, (step + 1) / tc.warmup_steps)",
      "warm = min(1.0, step / tc.warmup_steps)", "the first step has learning rate 0"),
    M("train-no-decay", "sae/training.py", "decay_steps = int(total * tc.decay_fraction)",
      "decay_steps = 0", "the learning-rate decay is lost"),
    M("train-held-out-overlap", "sae/training.py", "n_eval = min(n_eval, len(acts) // 5)",
      "n_eval = min(n_eval, len(acts) // 5) + 1", "held-out and training rows overlap by one... or the split is off by one"),
    M("train-resample-alive", "sae/training.py", "n = resample_dead_(sae, optimizer, source.draw(n_score), dead, generator, tc.resample_enc_scale)",
      "n = resample_dead_(sae, optimizer, source.draw(n_score), ~dead, generator, tc.resample_enc_scale)",
      "resampling re-initialises the alive features"),
    M("train-bdec-mean", "sae/training.py", "    if how == \"median\":\n        sae.b_dec.copy_(geometric_median(h))",
      "    if how == \"median\":\n        sae.b_dec.copy_(h.mean(0))", "the geometric median replaced by the mean"),
    # --- the SAE's metrics ------------------------------------------------------------------------
    M("fvu-uncentred", "sae/metrics.py", "var += float(((h[i:i + chunk].double() - mean) ** 2).sum())",
      "var += float((h[i:i + chunk].double() ** 2).sum())", "FVU divided by an uncentred variance"),
    M("fvu-fn-uncentred", "sae/metrics.py", "((h - h.mean(0)) ** 2).sum().clamp_min(1e-30)",
      "(h ** 2).sum().clamp_min(1e-30)", "the batch FVU's denominator uncentred"),
    M("dead-fired-once", "sae/metrics.py", "\"dead\": int((counts == 0).sum()),\n        \"dead_share\": float((counts == 0).double().mean()),",
      "\"dead\": int((counts <= 1).sum()),\n        \"dead_share\": float((counts <= 1).double().mean()),", "features that fired once counted dead"),
    M("l0-nonneg", "sae/metrics.py", "        fire = f > 0\n", "        fire = f >= 0\n", "L0 counts zero activations"),
    M("density-n-minus-one", "sae/metrics.py", "freq = counts.double() / max(n, 1)",
      "freq = counts.double() / max(n - 1, 1)", "density over n - 1 inputs"),
    M("dense-share-counts", "sae/metrics.py", "(counts.double() / max(n, 1) > DENSE_THRESHOLD)",
      "(counts.double() > DENSE_THRESHOLD)", "dense share compares counts, not frequencies"),
    M("spliced-is-mlp", "sae/metrics.py", "spliced_m = regression_metrics(torch.cat(spliced), y)",
      "spliced_m = regression_metrics(torch.cat(own), y)", "spliced metrics read the MLP's own predictions"),
    M("splice-no-decode", "sae/splice.py", "spliced = mlp.head(sae.decode(f)).squeeze(-1)               # [chunk]",
      "spliced = mlp.head(h).squeeze(-1)               # [chunk]", "the chunked pass's spliced prediction skips the SAE"),
    # --- explanations and the held-out rule -------------------------------------------------------
    M("held-out-same-inputs", "analysis/explain.py",
      "    return explain_units(acts, x, active=active_mask(acts, threshold_fraction), kind=kind, concepts=concepts,\n                         chosen=chosen)",
      "    return explain_units(acts_choose, x_choose, active=active_mask(acts_choose, threshold_fraction), kind=kind,\n                         concepts=concepts, chosen=chosen)",
      "explanations scored on the inputs they were chosen on"),
    M("held-out-rechosen", "analysis/explain.py",
      "    return explain_units(acts, x, active=active_mask(acts, threshold_fraction), kind=kind, concepts=concepts,\n                         chosen=chosen)",
      "    return explain_units(acts, x, active=active_mask(acts, threshold_fraction), kind=kind, concepts=concepts)",
      "explanations chosen again on the scoring inputs (in-sample)"),
    M("ramp-abs-r", "analysis/explain.py", "r_kept.clamp_min(0))", "r_kept.abs())",
      "a held-out ramp scored with |r|: a decreasing unit passes as increasing"),
    M("score-one-sided", "analysis/explain.py", "SC = torch.minimum(F1, F1_off)", "SC = F1",
      "the score forgets the silent side (near-tautologies score)"),
    M("monosemantic-bar", "analysis/explain.py", "MONOSEMANTIC_SCORE = 0.8 ", "MONOSEMANTIC_SCORE = 0.75 ",
      "the explained bar lowered"),
    M("ultralow-line", "analysis/explain.py", "ULTRALOW_DENSITY = 1e-3 ", "ULTRALOW_DENSITY = 1e-4 ",
      "the ultralow line moved"),
    M("share-over-all-units", "analysis/explain.py",
      "f\"{prefix}_monosemantic_share\": float(t[\"monosemantic\"].sum() / max(int(alive.sum()), 1)),",
      "f\"{prefix}_monosemantic_share\": float(t[\"monosemantic\"].sum() / max(len(t), 1)),",
      "explained share over every unit, dead ones included"),
    M("precision-recall-swap", "analysis/explain.py", "out[\"concept_prec\"][sl] = (tp_best / n_act.clamp_min(1)).numpy()",
      "out[\"concept_prec\"][sl] = (tp_best / n_true[best].clamp_min(1)).numpy()", "precision computed as recall"),
    M("ramp-min-support", "analysis/explain.py", "MIN_RAMP_SUPPORT = 20 ", "MIN_RAMP_SUPPORT = 0 ",
      "ramps correlated over a handful of inputs"),
    # --- labels, control, causal --------------------------------------------------------------------
    M("labels-same-stream", "analysis/labels.py", "fresh_inputs(seed, n_inputs, \"explain\", mlp.task)",
      "fresh_inputs(seed, n_inputs, \"analysis\", mlp.task)", "choosing and scoring inputs drawn from one stream"),
    M("labels-features-in-sample", "analysis/labels.py", "ex_f = held_out(f_c, x_choose, f, x, kind=\"feature\")",
      "ex_f = held_out(f, x, f, x, kind=\"feature\")", "features chosen on the scoring inputs"),
    M("control-swapped-streams", "analysis/labels.py", "r_c, r = random_direction_acts(h_c, h,",
      "r, r_c = random_direction_acts(h, h_c,", "the control's thresholds set on the scoring inputs"),
    M("control-density-complement", "analysis/controls.py", "q = torch.as_tensor(np.clip(1 - densities, 0, 1), dtype=torch.float32)",
      "q = torch.as_tensor(np.clip(densities, 0, 1), dtype=torch.float32)", "random directions at 1 - density"),
    M("control-all-densities", "analysis/labels.py", "ex_f.table[\"density\"].to_numpy()[fires]",
      "ex_f.table[\"density\"].to_numpy()", "random directions also for dead features (density 0)"),
    M("ablation-sign", "analysis/causal.py", "return -f * feature_output_weights(mlp, sae).to(f.device)[None, :]",
      "return f * feature_output_weights(mlp, sae).to(f.device)[None, :]", "zero-ablation effect with the wrong sign"),
    M("interchange-source-base", "analysis/interchange.py", "f[:, ids] = f_src[:, ids].to(f.device)",
      "f[:, ids] = f[:, ids]", "interchange patches nothing"),
    # --- I/O, the task --------------------------------------------------------------------------------
    M("metrics-unlocked", "common/io.py", "        with locked(lock) if lock is not None else nullcontext():",
      "        with nullcontext():", "metrics.json (and every locked group) updated without the lock"),
    M("metrics-section-merge", "common/io.py", "        data.update(sections)\n        sections.clear()",
      "        data = dict(sections)\n        sections.clear()", "a stage's update drops every other section"),
    M("atomic-group-no-undo", "common/io.py", "                    if path in backups:\n                        os.replace(backups.pop(path), path)",
      "                    if False:\n                        os.replace(backups.pop(path), path)", "a failed group rename leaves half the group"),
    M("task-rule-signed", "dataset/task.py", "return (a - b).abs()", "return (a - b)", "the task's rule loses its abs"),
    M("task-pointer-range", "dataset/task.py", "x[:, [self.p1, self.p2]] = torch.randint(0, self.slots, (n, 2), generator=generator)",
      "x[:, [self.p1, self.p2]] = torch.randint(0, self.slots - 1, (n, 2), generator=generator)", "the last slot never pointed at"),
    M("task-streams-collide", "dataset/task.py", "\"analysis\": 20, \"explain\": 21,",
      "\"analysis\": 20, \"explain\": 20,", "the choosing and scoring streams are one stream"),
    # --- harder ones: quantities no headline reads directly ----------------------------------------------
    M("auxk-k-ignored", "sae/topk.py", "k = min(self.cfg.aux_k, n_dead)", "k = n_dead",
      "AuxK rebuilds the residual from every dead latent, not the aux_k largest"),
    M("batchtopk-keeps-negatives", "sae/batchtopk.py", "keep = self.select(pre.detach()) & (pre.detach() > 0)",
      "keep = self.select(pre.detach())", "BatchTopK's training keeps selected negative pre-activations"),
    M("resample-weights-unsquared", "sae/training.py", "pick = torch.multinomial((loss ** 2).cpu().double()",
      "pick = torch.multinomial(loss.cpu().double()", "resampling draws inputs ~ loss, not loss squared"),
    M("resample-enc-scale-absolute", "sae/training.py", "sae.W_enc[:, idx] = directions.t() * enc_norm * enc_scale",
      "sae.W_enc[:, idx] = directions.t() * enc_scale", "resampled encoder columns not scaled to the alive ones' norm"),
    M("neuron-threshold", "analysis/explain.py", "NEURON_THRESHOLD_FRACTION = 0.0", "NEURON_THRESHOLD_FRACTION = 0.1",
      "neurons count as active only above 10% of their maximum"),
    M("interchange-keeps-equal-targets", "analysis/interchange.py", "keep = y_src != y_base",
      "keep = y_src == y_src", "pairs whose two targets are equal counted as successes"),
    M("ratio-inverted", "analysis/labels.py", "summary[\"monosemantic_ratio\"] = float(fs / ns) if ns > 0 else None",
      "summary[\"monosemantic_ratio\"] = float(ns / fs) if fs > 0 else None", "features / neurons ratio inverted"),
    M("effect-where-false-denominator", "analysis/causal.py", "-wd * (f_all - f_true) / (n - n_true).clamp_min(1)",
      "-wd * (f_all - f_true) / max(n, 1)", "the effect where the explanation fails averaged over every input"),
    # --- the MLP stage and the harvest -----------------------------------------------------------------
    M("mlp-keeps-last-epoch", "train_mlp.py", "        if val_mse < best[\"val_mse\"]:\n",
      "        if True:\n", "the last epoch is kept, not the best on validation"),
    M("mlp-no-augment", "train_mlp.py", "xe = x_train if args.no_augment else augment(x_train, gen)",
      "xe = x_train", "the label-preserving augmentation is never applied"),
    M("exact-match-floor", "mlp/evaluate.py", "\"exact_match\": float((pred.round() == y.round()).float().mean()),",
      "\"exact_match\": float((pred.floor() == y.round()).float().mean()),", "exact-match truncates instead of rounding"),
    M("harvest-chunk-offset", "mlp/activations.py", "out[c.start:c.start + len(c.hidden)] = c.hidden.cpu()",
      "out[c.start:c.start + len(c.hidden)] = c.hidden.cpu().roll(1, 0)", "harvested rows misaligned with their inputs"),
]


def tree_files(root: Path) -> list:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return [f for f in out if f and (root / f).is_file()]


def copy_tree(root: Path, dst: Path) -> None:
    for f in tree_files(root):
        target = dst / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, target)


def run_tests(where: Path, tests, timeout: float) -> tuple[bool, float, str]:
    """(passed, seconds, the failing test or pytest's last line) of pytest on `tests` in `where`,
    stopping at the first failure."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not browser", *tests]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    try:
        res = subprocess.run(cmd, cwd=where, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - t0, f"timed out after {timeout:.0f} s"
    lines = [ln for ln in (res.stdout + res.stderr).strip().split("\n") if ln.strip()]
    failed = [ln for ln in lines if ln.startswith(("FAILED ", "ERROR "))]   # the test that caught it
    return res.returncode == 0, time.perf_counter() - t0, (failed or lines or [""])[0 if failed else -1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="", help="comma-separated mutant names")
    p.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    p.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    args = p.parse_args(argv)
    names = [m.name for m in MUTANTS]
    assert len(set(names)) == len(names), "duplicate mutant names"
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only.split(",")]
    unknown = set(filter(None, args.only.split(","))) - set(names)
    if unknown:
        print(f"error: unknown mutants: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.list:
        for m in chosen:
            print(f"{m.name:28s} {m.path:24s} {m.what}\n{'':28s} tests: {' '.join(m.tests)}")
        return 0
    stale = [m for m in chosen if (ROOT / m.path).read_text(encoding="utf-8").count(m.old) != 1]
    for m in stale:
        print(f"stale: {m.name}: its text occurs {(ROOT / m.path).read_text().count(m.old)} times in {m.path}")
    chosen = [m for m in chosen if m not in stale]
    with tempfile.TemporaryDirectory(prefix="mutations-") as tmp:
        work = Path(tmp)
        copy_tree(ROOT, work)
        for tests in sorted({m.tests for m in chosen}):
            ok, secs, last = run_tests(work, tests, args.timeout)
            print(f"baseline {' '.join(tests)}: {'pass' if ok else 'FAIL'} ({secs:.0f} s) {last}", flush=True)
            if not ok:
                print("error: a test set fails on the unmutated tree; fix it first", file=sys.stderr)
                return 1
        results = []
        for i, m in enumerate(chosen, 1):
            path = work / m.path
            original = path.read_text(encoding="utf-8")
            path.write_text(original.replace(m.old, m.new), encoding="utf-8")
            try:
                passed, secs, last = run_tests(work, m.tests, args.timeout)
            finally:
                path.write_text(original, encoding="utf-8")
            results.append((m, not passed))
            print(f"[{i:2d}/{len(chosen)}] {'caught  ' if not passed else 'SURVIVED'} {m.name:28s} {secs:5.0f} s  "
                  f"{last[:90]}", flush=True)
    caught = sum(c for _, c in results)
    print(f"\nkilled {caught} of {len(results)} mutants: {100 * caught / max(len(results), 1):.1f}%")
    for m, c in results:
        if not c:
            print(f"  survived: {m.name} ({m.path}): {m.what}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
