"""Stage 6: probe single inputs: what the MLP and the spliced MLP answer, and which features did it.

Reads  <run-dir>/mlp/perfect_mlp.pth (stage 2), <run-dir>/sae/sae_model.pth (stage 4) and the run's
       labels (reports/features.csv, neurons.csv, labels.pt and the "interpretability" section of
       metrics.json, from label_features.py; refused when missing or older than the MLP/SAE).
Writes nothing. Prints, for each input: the expected output, the MLP's and the spliced MLP's
outputs, the number of active features, and the top features with their activation, explanation,
score and contribution to the prediction on this input (+ raises it: f * (W_dec . w_head); zeroing the
feature moves the prediction by minus that; see analysis.probe); with --ablate / --clamp, the edited
prediction and each edited feature's own share of the change.

    python feature_probe.py                                   # the reference project's 5 inputs
    python feature_probe.py --input "8,9,5,1,3,2,9,4,7,1"     # any input (repeatable)
    python feature_probe.py --ablate 12 --clamp 40=3.5        # edit features, see the output move
    python feature_probe.py --json                            # one JSON object for scripts
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import re

import torch

from analysis.labels_io import read_labels
from analysis.probe import probe
from analysis.run import load_run_models
from common import validate
from common.cli import ArgumentParser, add_common_args, add_sae_arg, run_main, selected_saes
from common.io import PipelineError, json_text
from common.summary import number_at


INPUT_HELP = ('2L + 2 comma-separated integers for the run\'s task of L slots: L digits 0-9, pointer p1 0..L-1, '
              'L digits 0-9, pointer p2 0..L-1, e.g. "8,9,5,1,3,2,9,4,7,1" at L = 4')


def input_help(task) -> str:
    """What an --input of `task` is, e.g. '10 comma-separated integers: 4 digits 0-9, pointer p1 0-3, ...'."""
    L = task.slots
    return (f'{task.n_inputs} comma-separated integers: {L} digits 0-9, pointer p1 0-{L - 1}, {L} digits 0-9, '
            f'pointer p2 0-{L - 1}, e.g. "{",".join(map(str, task.reference_inputs[0]))}"')


# a clamp far beyond any activation (the default run's largest is ~10) only measures float overflow
MAX_CLAMP = 1e6
CLAMP_VALUE = validate.float_range(-MAX_CLAMP, MAX_CLAMP)


def clamp_edit(text: str) -> tuple[str, float]:
    """'12=3.5' -> ('12', 3.5): the feature id is checked against the SAE once it is loaded."""
    expected = f"ID=VALUE with VALUE a number in [{-MAX_CLAMP:g}, {MAX_CLAMP:g}], e.g. 12=3.5"
    if "=" not in str(text):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {validate.shown(text)}")
    i, v = str(text).split("=", 1)
    try:
        return i.strip(), CLAMP_VALUE(v.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {validate.shown(text)}") from None


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    add_sae_arg(p)
    p.add_argument("--input", action="append", metavar='"8,9,5,1,3,2,9,4,7,1"',
                   help=f"probe this input instead of the reference five (repeatable): {INPUT_HELP}")
    p.add_argument("--ablate", action="append", default=[], metavar="ID[,ID...]",
                   help="zero these features in the spliced pass and show how the output moves (repeatable)")
    p.add_argument("--clamp", type=clamp_edit, action="append", default=[], metavar="ID=VALUE",
                   help=f"set feature ID to VALUE in the spliced pass, |VALUE| <= {MAX_CLAMP:g} (repeatable)")
    p.add_argument("--top", type=validate.positive_int, default=8, help="features listed per input, by activation (default: 8)")
    p.add_argument("--n-inputs", type=validate.int_range(1000, 4_000_000), default=None,
                   help="refuse labels made on another number of fresh inputs (default: whatever label_features.py used)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p.parse_args(argv)


def parse_input(text: str, task) -> list:
    """'8,9,5,1,3,2,9,4,7,1' (brackets and spaces allowed) -> 2L + 2 ints of `task` (the MLP's), or
    PipelineError saying what is expected."""
    body = text.strip().strip("[]()").strip()
    parts = [t for t in re.split(r"[,\s]+", body) if t]
    try:
        values = [int(t) for t in parts]
    except ValueError:
        raise PipelineError(f"--input {text!r}: expected {input_help(task)}") from None
    problem = task.input_problem(values, name="input")
    if problem:
        raise PipelineError(f"--input {text!r}: {problem}; expected {input_help(task)}")
    return values


def parse_edits(args, d_sae: int) -> tuple[list, dict]:
    def feature_id(tok: str, flag: str) -> int:
        try:
            i = int(tok)
        except ValueError:
            raise PipelineError(f"{flag} {tok!r}: expected a feature id 0..{d_sae - 1}") from None
        if not 0 <= i < d_sae:
            raise PipelineError(f"{flag} {i}: this SAE has features 0..{d_sae - 1}")
        return i

    ablated = [feature_id(t.strip(), "--ablate") for a in args.ablate for t in a.split(",") if t.strip()]
    clamped = {}
    for i, value in args.clamp:            # (clamp_edit checked the form and the value)
        clamped[feature_id(i, "--clamp")] = value
    return ablated, clamped


def format_text(records: list, summary: dict) -> str:
    """The printout of `analysis.probe.probe`'s records (this script's output, so it lives here)."""
    lines = []
    share, neurons = number_at(summary, "features_monosemantic_share"), number_at(summary, "neurons_monosemantic_share")
    if share is not None:
        lines.append(f"labels: {summary.get('features_alive')} alive features, {share:.0%} explained at score >= 0.8 "
                     f"(neurons {float('nan') if neurons is None else neurons:.0%}), "
                     f"{summary.get('n_inputs')} fresh inputs")
    for r in records:
        lines.append("")
        lines.append(f"input {r['input']}  p1={r['p1']} a={r['a']}  p2={r['p2']} b={r['b']}  expected {r['expected']}")
        lines.append(f"  MLP {r['mlp']:.3f}   spliced {r['spliced']:.3f}   active features {r['active_features']}")
        if "edited" in r:
            e = r["edited"]
            what = " ".join([f"ablate {','.join(map(str, e['ablate']))}" if e["ablate"] else "",
                             " ".join(f"clamp {k}={v:g}" for k, v in e["clamp"].items())]).strip()
            lines.append(f"  {what}: spliced {r['spliced']:.3f} -> {e['spliced']:.3f} ({e['change']:+.3f} in all)")
            for p in e["per_feature"]:
                verb = "zeroed" if p["edit"] == "ablate" else f"set to {p['new_activation']:g}"
                if p["edit"] == "ablate" and not p["active"]:
                    lines.append(f"    feature {p['feature']} was not active on this input: zeroing it changes nothing")
                    continue
                state = f"from {p['activation']:.3f}" if p["active"] else "from 0 (not active on this input)"
                lines.append(f"    feature {p['feature']} {verb} {state}: {p['change']:+.3f}")
        lines.append(f"  {'feature':>7} {'act':>7}  {'explanation':<36} {'score':>5} {'F1':>5} {'r':>5} {'contrib':>7}")
        fmt = lambda v: "  -  " if v is None else f"{v:.2f}"
        for t in r["top_features"]:
            flag = "" if t["status"] == "alive" else f" ({t['status']})"
            lines.append(f"  {t['feature']:>7} {t['activation']:>7.3f}  {(t['explanation'] + flag)[:36]:<36} "
                         f"{fmt(t['score']):>5} {fmt(t['f1']):>5} {fmt(t['corr']):>5} {t['contribution']:>+7.3f}")
    lines.append("")
    lines.append("score: how well the explanation matches where the feature fires and where it is silent (F1 of "
                 "each side, the lesser); ramps: the lesser of that and |r|, r = correlation with the magnitude where "
                 "it fires. contrib: the feature's contribution to the spliced prediction on this input, f * (W_dec . w_head); "
                 "+ raises the prediction, and zeroing the feature changes it by minus that.")
    return "\n".join(lines)


def main(args) -> dict:
    paths = selected_saes(args)[0]
    mlp, sae = load_run_models(paths)          # on the CPU: a handful of inputs
    inputs = [parse_input(t, mlp.task) for t in args.input] if args.input else [list(r) for r in mlp.task.reference_inputs]
    ablated, clamped = parse_edits(args, sae.cfg.d_sae)
    labels = read_labels(paths, n_inputs=args.n_inputs, models=(mlp, sae))
    records = probe(mlp, sae, labels, torch.tensor(inputs, dtype=torch.long), args.top, ablated, clamped)
    result = {"inputs": records, "labels": {k: labels.summary.get(k) for k in (
        "features_alive", "features_monosemantic_share", "neurons_monosemantic_share", "n_inputs", "seed")}}
    if args.json:
        print(json_text(result, indent=2))
    else:
        print(format_text(records, labels.summary))
    return result


if __name__ == "__main__":
    run_main(main, parse_args())
