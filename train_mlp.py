"""Stage 2: train the MLP on the pointer-difference task.

Reads  <run-dir>/dataset/mlp_{train,val,test}.xlsx   (stage 1: dataset/data_generator.py)
Writes <run-dir>/mlp/perfect_mlp.pth (weights + config + metrics + provenance: the digests of the three
       splits it was trained on) and the "mlp" section of <run-dir>/metrics.json.

The task (L digits per column) is the one the training split holds (its rows' width); the validation
and test splits must hold the same, and the MLP's config records it for every later stage.

Recipe: AdamW with a one-cycle schedule at batch 256; each epoch sees the training set under a
fresh label-preserving symmetry of the task (slots of a column permuted with their pointer,
columns swapped half the time); the epoch with the best validation MSE is kept.

    python train_mlp.py                         # the default run
    python train_mlp.py --evaluate FILE.xlsx [--json]   # score the saved MLP on any data file
"""
if __name__ == "__main__":  # first: Ctrl-C during the slow imports below is one line, exit 130
    from common import interrupt
    interrupt.install()
import argparse
import time
from dataclasses import asdict

import torch
import torch.nn.functional as F
from tqdm import tqdm

from common.checkpoint import check_layout, load_checkpoint, load_optimizer_state_, save_checkpoint, set_generator_state_
from common.cli import ArgumentParser, add_common_args, pick_device, run_main, run_paths, seed_everything
from common import provenance
from common.io import PipelineError, json_text, require_inputs, update_metrics
from common.validate import shown, finite_nonnegative_float, finite_positive_float, int_range, nonnegative_int, positive_int
from dataset.data_loader import load_excel
from dataset.task import augment, task_of
from mlp.evaluate import evaluate
from mlp.mlp_definition import MAX_WIDTH, MLPConfig, PointerMLP, load_mlp, save_mlp

WIDTH = int_range(1, MAX_WIDTH)


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--epochs", type=positive_int, default=100, help="passes over the training set (default: 100)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="default: 256")
    p.add_argument("--lr", type=finite_positive_float, default=3e-3, help="peak learning rate of the one-cycle schedule (default: 3e-3)")
    p.add_argument("--weight-decay", type=finite_nonnegative_float, default=1e-4, help="AdamW weight decay (default: 1e-4)")
    p.add_argument("--d-mlp", type=WIDTH, default=MLPConfig.d_mlp, help=f"first hidden layer width, 1..{MAX_WIDTH} (default: {MLPConfig.d_mlp})")
    p.add_argument("--d-hidden", type=WIDTH, default=MLPConfig.d_hidden, help=f"harvested layer width, 1..{MAX_WIDTH} (default: {MLPConfig.d_hidden})")
    p.add_argument("--no-augment", action="store_true", help="train on the rows as they are (no symmetry augmentation)")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=10,
                   help="epochs between resumable checkpoints, 0: none (default: 10)")
    p.add_argument("--resume", action="store_true", help="continue from <run-dir>/mlp/checkpoint.pth")
    p.add_argument("--evaluate", metavar="FILE.xlsx", help="evaluate the saved MLP on FILE and exit")
    p.add_argument("--json", action="store_true", help="with --evaluate: print one JSON object")
    return p.parse_args(argv)


def evaluate_file(args) -> dict:
    paths = run_paths(args)
    model = load_mlp(paths.mlp)
    x, y = load_excel(args.evaluate, model.task)   # rows of another task are refused by row
    m = evaluate(model, x, y)
    if args.json:
        print(json_text(m))
    else:
        print(f"{args.evaluate}: n={m['n']}  MSE {m['mse']:.4f}  exact-match {m['exact_match']:.2%}")
    return m


def main(args) -> dict:
    if args.evaluate:
        return evaluate_file(args)
    paths = run_paths(args)
    require_inputs(paths, "train_xlsx", "val_xlsx", "test_xlsx")
    x_train, y_train = load_excel(paths.train_xlsx)
    task = task_of(x_train)                         # the run's task, as the data generator chose it
    x_val, y_val = load_excel(paths.val_xlsx, task)
    x_test, y_test = load_excel(paths.test_xlsx, task)
    made_from = {split: provenance.entry(paths.split_xlsx(split), provenance.rows_digest(x, y), paths.root)   # the data the MLP
                 for split, x, y in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test))}
    device = pick_device(args.device)
    seed_everything(args.seed)

    cfg = MLPConfig(d_mlp=args.d_mlp, d_hidden=args.d_hidden, slots=task.slots)
    model = PointerMLP(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)  # all data randomness, saved in checkpoints
    train_config = {k: v for k, v in vars(args).items() if k not in ("evaluate", "json", "quiet", "resume", "device")}
    start, best = 0, {"val_mse": float("inf"), "epoch": -1, "state_dict": None}
    history = []   # per epoch: train loss (mean over its batches), val MSE and exact-match (reports/training.html)

    if args.resume and paths.mlp_checkpoint.exists():
        remedy = "delete it and train without --resume"
        ck = load_checkpoint(paths.mlp_checkpoint, config=asdict(cfg), train_config=train_config, made_from=made_from,
                             remedy=remedy,
                             required=["state_dict", "optimizer", "scheduler", "generator", "epoch", "best"],
                             what="MLP training checkpoint")
        try:  # (robustness) every entry is checked before it is used: a damaged checkpoint is one line
            check_layout(model.state_dict(), ck["state_dict"], "state_dict")
            load_optimizer_state_(opt, ck["optimizer"])
            check_layout(sched.state_dict(), ck["scheduler"], "scheduler")
            set_generator_state_(gen, ck["generator"])
            epoch, best = ck["epoch"], ck["best"]
            if not (isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch <= args.epochs):
                raise ValueError(f"epoch = {shown(epoch)}: expected 0..{args.epochs}")
            if not (isinstance(best, dict) and set(best) == {"val_mse", "epoch", "state_dict"}
                    and isinstance(best["val_mse"], (int, float)) and isinstance(best["epoch"], int)):
                raise ValueError("best: expected val_mse, epoch and state_dict")
            if best["state_dict"] is not None:
                check_layout(model.state_dict(), best["state_dict"], "best.state_dict")
            if not isinstance(ck.get("history", []), list):
                raise ValueError("history: expected a list")
            model.load_state_dict(ck["state_dict"])
            sched.load_state_dict(ck["scheduler"])
            start, best = epoch, dict(best)
            history = list(ck.get("history", []))
        except (RuntimeError, ValueError, KeyError, TypeError) as e:
            raise PipelineError(f"{paths.mlp_checkpoint}: not a usable MLP training checkpoint ({e}); {remedy}") from None
    elif args.resume and not args.quiet:
        print(f"no checkpoint at {paths.mlp_checkpoint}; starting from scratch")

    x_val_d, y_val_d = x_val.to(device), y_val.to(device)
    t0 = time.time()
    bar = tqdm(range(start, args.epochs), desc="MLP", disable=args.quiet, initial=start, total=args.epochs)
    for epoch in bar:
        model.train()
        xe = x_train if args.no_augment else augment(x_train, gen)
        xe, ye = xe.to(device), y_train.to(device)
        order = torch.randperm(len(xe), generator=gen).to(device)
        loss_sum = torch.zeros((), device=device)
        for i in range(0, len(xe), args.batch_size):
            idx = order[i:i + args.batch_size]
            loss = F.mse_loss(model(xe[idx]), ye[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(idx)
        model.eval()
        with torch.no_grad():
            val_pred = model(x_val_d)
            val_mse = float(F.mse_loss(val_pred, y_val_d))
            val_exact = float((val_pred.round() == y_val_d).float().mean())
        history.append({"epoch": epoch + 1, "train_loss": round(float(loss_sum) / len(xe), 6),
                        "val_mse": round(val_mse, 6), "val_exact_match": round(val_exact, 6)})
        if val_mse < best["val_mse"]:
            best = {"val_mse": val_mse, "epoch": epoch, "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
        bar.set_postfix(loss=f"{loss.item():.4f}", val_mse=f"{val_mse:.4f}")  # noqa
        if args.checkpoint_every and (epoch + 1) % args.checkpoint_every == 0 and epoch + 1 < args.epochs:
            save_checkpoint(paths.mlp_checkpoint, config=asdict(cfg), train_config=train_config, made_from=made_from,
                            state={"state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                                   "scheduler": sched.state_dict(), "generator": gen.get_state(),
                                   "epoch": epoch + 1, "best": best, "history": history})
    train_seconds = time.time() - t0

    if best["state_dict"] is None:  # every epoch's validation MSE was NaN: nothing worth saving
        raise PipelineError(f"--lr {args.lr:g}: training diverged (validation MSE never finite); lower --lr. "
                            f"{paths.mlp} is unchanged")
    model.load_state_dict(best["state_dict"])
    model.eval()
    metrics = {
        "best_epoch": best["epoch"] + 1,
        "train": evaluate(model, x_train, y_train),
        "val": evaluate(model, x_val, y_val),
        "test": evaluate(model, x_test, y_test),
        "train_seconds": round(train_seconds, 2),
        "history": history,
    }
    record = save_mlp(model.cpu(), paths.mlp, metrics=metrics, train_config=train_config, made_from=made_from)
    update_metrics(paths.metrics, "mlp", {**metrics, provenance.KEY: record})
    paths.mlp_checkpoint.unlink(missing_ok=True)
    if not args.quiet:
        print(f"MLP  best epoch {metrics['best_epoch']}/{args.epochs}  ({train_seconds:.1f} s)")
        for split in ("train", "val", "test"):
            m = metrics[split]
            print(f"  {split:<5} n={m['n']:>5}  MSE {m['mse']:.4f}  exact-match {m['exact_match']:.2%}")
        print(f"wrote {paths.mlp}")
    return metrics


if __name__ == "__main__":
    run_main(main, parse_args())
