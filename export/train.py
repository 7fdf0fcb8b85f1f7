"""Train an IR-Net binary network, as published (Qin et al., CVPR 2020).

    python -m export.train --arch resnet20 --data digits --epochs 40 --out model.pth
    torchrun --nproc_per_node 2 -m export.train ...      # DistributedDataParallel

SGD (momentum 0.9, lr 0.1, VGG-Small 0.007, weight decay 1e-4), batch 128, cosine annealing
over the run, and the EDE (k, t) of `export.irnet.ede_schedule` set at the start of every epoch.
Each epoch ends with an evaluation in deployment semantics (eval mode, the engine's sign rule)
on a validation split held out of the training data (--val-fraction), which picks the epoch to
keep; the test split is evaluated once, at the end, on the kept epoch, so its accuracy is not
chosen by it. The kept epoch is saved to --out with everything `python -m export.convert` needs
(and its validation and test accuracy); the latest epoch, with optimizer state, to <out>.last
for --resume. Under torchrun only rank 0 prints and saves.
"""
import argparse
import os
import random
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from .data import load_data, split_validation, subset
from .irnet import deploy_sign, ede_schedule, set_ede
from .models import MODELS, create_model

DEFAULT_LR = {"vgg_small": 0.007}  # the paper's VGG-Small rate; everything else 0.1


def _parser():
    p = argparse.ArgumentParser(prog="python -m export.train", description=__doc__.split("\n")[0])
    p.add_argument("--arch", default="resnet20", choices=sorted(MODELS))
    p.add_argument("--data", default="digits", help="digits | cifar10:DIR | imagefolder:DIR")
    p.add_argument("--out", default="model.pth")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=128, help="global batch (split over processes)")
    p.add_argument("--lr", type=float, default=None, help="default 0.1 (vgg_small 0.007)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--t-min", type=float, default=0.1, help="EDE t at the first epoch")
    p.add_argument("--t-max", type=float, default=10.0, help="EDE t at the end")
    p.add_argument("--input-size", type=int, nargs=3, metavar=("C", "H", "W"))
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--train-subset", type=int, help="train on this many samples (quick runs)")
    p.add_argument("--test-subset", type=int, help="evaluate on this many samples")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of the training data held out to pick the epoch (default 0.1; "
                        "0 picks it on the test split, which then overstates test accuracy)")
    p.add_argument("--max-steps", type=int, help="stop each epoch after this many steps")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    p.add_argument("--threads", type=int, help="torch CPU threads per process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", nargs="?", const="auto", metavar="PATH",
                   help="continue from PATH (default <out>.last)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    return p


class Dist:
    """Rank/world/device of this process; a plain single process when not under torchrun."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{self.local_rank}" if cuda else "cpu")
        if self.enabled:
            if cuda:
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if cuda else "gloo")

    @property
    def main(self):
        return self.rank == 0

    def sum(self, *values):
        """Sum numbers over processes (for exact global loss/accuracy)."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.enabled:
            dist.all_reduce(t)
        return t.tolist()

    def close(self, wait_for_peers=True):
        """Tear down the process group. After a normal run, wait for every rank first: rank 0
        is still saving its checkpoint when the others finish, and a peer that tears down gloo
        under it makes the process abort (seen as a flaky SIGABRT). After an error, do not
        wait: the other ranks may never arrive."""
        if self.enabled:
            if wait_for_peers:
                dist.barrier()
            dist.destroy_process_group()


def _progress(iterable, enabled, **kw):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    # disable=None: no bar when stderr is not a terminal (a log file would get one line of
    # thousands of characters); the per-epoch lines still report progress there.
    return tqdm(iterable, leave=False, dynamic_ncols=True, disable=None, **kw)


def _say(msg, d):
    if d.main:
        print(msg, flush=True)


def train_one_epoch(model, loader, optimizer, augment, d, args, epoch):
    model.train()
    loss_sum = correct = count = 0.0
    bar = _progress(loader, d.main and not args.no_progress, desc=f"epoch {epoch + 1}/{args.epochs}")
    for step, (x, y) in enumerate(bar):
        if args.max_steps is not None and step >= args.max_steps:
            break
        if augment is not None:
            x = augment(x)
        x, y = x.to(d.device), y.to(d.device)
        out = model(x)
        loss = F.cross_entropy(out, y)  # log_softmax outputs (resnet18) are idempotent here
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(y)
        correct += float((out.argmax(1) == y).sum())
        count += len(y)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_sum / count:.3f}", acc=f"{correct / count:.1%}")
    loss_sum, correct, count = d.sum(loss_sum, correct, count)
    return loss_sum / max(count, 1), correct / max(count, 1)


@torch.no_grad()
def evaluate(model, loader, d, show=False):
    """Top-1 in deployment semantics (eval mode, the engine's sign rule), over all processes."""
    model.eval()
    correct = count = 0.0
    with deploy_sign(model):
        for x, y in _progress(loader, show, desc="eval"):
            x, y = x.to(d.device), y.to(d.device)
            correct += float((model(x).argmax(1) == y).sum())
            count += len(y)
    correct, count = d.sum(correct, count)
    return correct / max(count, 1)


def _last_path(out):
    return out + ".last"


def _checkpoint(model, args, data, accuracy, epoch):
    return {"arch": args.arch,
            "arch_kwargs": {"num_classes": len(data.classes),
                            "input_size": list(data.preprocess["input_size"])},
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "preprocess": data.preprocess, "classes": list(data.classes),
            "accuracy": float(accuracy), "epoch": int(epoch),
            "options": {k: v for k, v in vars(args).items()}}


def _save(obj, path):
    """Write to a temporary name then rename: an interrupted save never leaves half a file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def run(args):
    """Train with parsed `args`; returns {"accuracy": the kept epoch's validation top-1 (test
    top-1 with --val-fraction 0), "epoch" (0-based), "test_accuracy", "out"}."""
    d = Dist()
    finished = False
    try:
        result = _run(args, d)
        finished = True
        return result
    finally:
        d.close(wait_for_peers=finished)


def _run(args, d):
    if args.threads:
        torch.set_num_threads(args.threads)
    # Same seed on every rank: identical initial weights (DDP also broadcasts them).
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed + d.rank)  # different augmentation draws per process
    data = load_data(args.data, args.input_size)
    train_set, val_set = split_validation(data.train, args.val_fraction, args.seed)
    train_set = subset(train_set, args.train_subset, args.seed)
    test_set = subset(data.test, args.test_subset, args.seed)
    pick_set = val_set if val_set is not None else test_set
    pick_name = "val" if val_set is not None else "test"
    torch.manual_seed(args.seed)
    model = create_model(args.arch, num_classes=len(data.classes),
                         input_size=data.preprocess["input_size"]).to(d.device)
    torch.manual_seed(args.seed + d.rank)
    lr = args.lr if args.lr is not None else DEFAULT_LR.get(args.arch, 0.1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=args.momentum,
                                weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(args.epochs, 1))
    start, best, best_epoch = 0, -1.0, -1
    best_state = None
    if args.resume:
        path = _last_path(args.out) if args.resume == "auto" else args.resume
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        state = torch.load(path, map_location=d.device, weights_only=True)
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, best = int(state["epoch"]) + 1, float(state["best_accuracy"])
        best_epoch = int(state.get("best_epoch", -1))
        _say(f"resumed from {path} at epoch {start + 1} (best so far {best:.2%})", d)
    net = model
    if d.enabled:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    per_proc = max(1, args.batch_size // d.world)
    # Each process sees its own shard; the test shard is strided so nothing is counted twice.
    sampler = (torch.utils.data.distributed.DistributedSampler(train_set, d.world, d.rank,
                                                               shuffle=True, seed=args.seed)
               if d.enabled else None)
    g = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=per_proc, shuffle=sampler is None,
                              sampler=sampler, generator=g, num_workers=args.workers,
                              drop_last=len(train_set) > per_proc)
    def eval_loader(dataset):
        return DataLoader(Subset(dataset, range(d.rank, len(dataset), d.world)),
                          batch_size=max(per_proc, 256), num_workers=args.workers)
    test_loader, pick_loader = eval_loader(test_set), eval_loader(pick_set)
    augment = None if args.no_augment else data.augment
    _say(f"training {args.arch} on {args.data}: {len(train_set)} train / "
         f"{len(val_set) if val_set is not None else 0} val / {len(test_set)} test, "
         f"input {data.preprocess['input_size']}, {len(data.classes)} classes, lr {lr}, "
         f"{args.epochs} epochs, {d.world} process(es), {torch.get_num_threads()} thread(s) each", d)
    for epoch in range(start, args.epochs):
        k, t = ede_schedule(epoch, args.epochs, args.t_min, args.t_max)
        set_ede(model, k, t)
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.time()
        loss, train_acc = train_one_epoch(net, train_loader, optimizer, augment, d, args, epoch)
        scheduler.step()
        acc = evaluate(model, pick_loader, d)
        improved = acc > best
        if improved:
            best, best_epoch = acc, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        _say(f"epoch {epoch + 1:3d}/{args.epochs}  loss {loss:.4f}  train {train_acc:6.2%}  "
             f"{pick_name} {acc:6.2%}{' *' if improved else ''}  t {t:.3g}  lr "
             f"{scheduler.get_last_lr()[0]:.4g}  {time.time() - t0:.1f}s", d)
        if d.main:
            ckpt = _checkpoint(model, args, data, acc, epoch)
            if improved:
                _save(ckpt, args.out)
            ckpt.update(optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                        best_accuracy=best, best_epoch=best_epoch)
            _save(ckpt, _last_path(args.out))
    test_acc = None
    if best_state is None and os.path.isfile(args.out):  # resumed, and no later epoch was better
        best_state = torch.load(args.out, map_location=d.device, weights_only=True)["state_dict"]
    if best_state is not None:  # the kept epoch, scored once on the test split
        model.load_state_dict(best_state)
        test_acc = evaluate(model, test_loader, d)
        if d.main:
            ckpt = torch.load(args.out, map_location="cpu", weights_only=True)
            ckpt["test_accuracy"] = float(test_acc)
            _save(ckpt, args.out)
        _say(f"kept epoch {best_epoch + 1} ({pick_name} top-1 {best:.2%}): test top-1 {test_acc:.2%}"
             f" -> {args.out}", d)
    return {"accuracy": best, "epoch": best_epoch, "test_accuracy": test_acc, "out": args.out}


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
