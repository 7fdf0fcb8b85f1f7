"""Training data for `export.train`: torch datasets over irnet_infer.datasets' readers.

The readers (split, pixels, normalization) live in the runtime package so `irnet_infer eval`
sees exactly what training saw; this module only wraps them for torch and adds training
augmentation. `load_data(source, input_size)` returns a `Data` with train/test datasets,
the `preprocess` settings and the class names a checkpoint should carry.
"""
import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from irnet_infer import datasets as rd
from irnet_infer.preprocess_defaults import cifar10_preprocess, imagefolder_preprocess


@dataclasses.dataclass
class Data:
    train: Dataset
    test: Dataset
    preprocess: dict
    classes: list
    augment: object  # callable(batch x) -> x applied to training batches, or None


class FolderDataset(Dataset):
    """Image files read on access (an ImageNet-size folder does not fit in memory)."""

    def __init__(self, paths, labels, settings):
        self.paths, self.labels, self.settings = paths, labels, settings

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        x = rd.load_folder_image(self.paths[i], self.settings)
        return torch.from_numpy(x), int(self.labels[i])


class RandomCropFlip:
    """Batch augmentation on normalized NCHW tensors: random crop after `pad` pixels of
    padding, and a horizontal flip with probability 1/2 when `flip`. Padding uses each
    channel's normalized black (-mean/std), i.e. zero pixels as torchvision pads them."""

    def __init__(self, pad, flip, preprocess):
        self.pad, self.flip = int(pad), bool(flip)
        mean = torch.tensor(preprocess["mean"], dtype=torch.float32)
        std = torch.tensor(preprocess["std"], dtype=torch.float32)
        self.fill = (-mean / std).view(1, -1, 1, 1)

    def __call__(self, x):
        n, c, h, w = x.shape
        p = self.pad
        if p:
            padded = self.fill.expand(n, c, h + 2 * p, w + 2 * p).clone()
            padded[:, :, p:p + h, p:p + w] = x
            dy = torch.randint(0, 2 * p + 1, (n,))
            dx = torch.randint(0, 2 * p + 1, (n,))
            # Gather every sample's window at once with index arithmetic (no per-sample loop).
            rows = (dy.view(n, 1) + torch.arange(h).view(1, h))  # (n, h)
            cols = (dx.view(n, 1) + torch.arange(w).view(1, w))  # (n, w)
            idx_n = torch.arange(n).view(n, 1, 1, 1)
            idx_c = torch.arange(c).view(1, c, 1, 1)
            x = padded[idx_n, idx_c, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
        if self.flip:
            mask = torch.rand(n) < 0.5
            x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
        return x


def load_data(source, input_size=None):
    """Data for `source` ('digits', 'cifar10:DIR', 'imagefolder:DIR'). `input_size` (C, H, W)
    defaults to 3x32x32 (digits, CIFAR) or 3x224x224 (image folders)."""
    kind, path = rd.parse_source(source)
    if kind == "digits":
        d = rd.load_digits_split(input_size or (3, 32, 32))
        h = d["preprocess"]["input_size"][1]
        # Digits are not mirror-symmetric (flipping turns a 2 into something else); a shift
        # of up to 1/8 of the image (one original 8x8 pixel) is safe augmentation.
        augment = RandomCropFlip(max(1, h // 8), False, d["preprocess"])
        return Data(TensorDataset(torch.from_numpy(d["x_train"]), torch.from_numpy(d["y_train"])),
                    TensorDataset(torch.from_numpy(d["x_test"]), torch.from_numpy(d["y_test"])),
                    d["preprocess"], d["classes"], augment)
    if kind == "cifar10":
        pre = cifar10_preprocess(input_size or (3, 32, 32))
        tr_img, tr_lab, classes = rd.read_cifar10(path, "train")
        te_img, te_lab, _ = rd.read_cifar10(path, "test")

        def tensors(images, labels):
            return TensorDataset(torch.from_numpy(rd.normalize_images(images, pre)),
                                 torch.from_numpy(labels))
        return Data(tensors(tr_img, tr_lab), tensors(te_img, te_lab), pre, classes,
                    RandomCropFlip(4, True, pre))
    pre = imagefolder_preprocess(input_size or (3, 224, 224))
    tr_paths, tr_lab, classes = rd.list_image_folder(path, "train")
    te_paths, te_lab, _ = rd.list_image_folder(path, "val", classes)
    pad = 4 if pre["input_size"][1] <= 64 else 0  # small images: CIFAR-style crop; large: flip
    return Data(FolderDataset(tr_paths, tr_lab, pre), FolderDataset(te_paths, te_lab, pre),
                pre, classes, RandomCropFlip(pad, True, pre))


def subset(dataset, n, seed=0):
    """The first `n` samples of a seeded permutation (quick runs and tests)."""
    if n is None or n >= len(dataset):
        return dataset
    idx = np.random.default_rng(seed).permutation(len(dataset))[:n]
    return torch.utils.data.Subset(dataset, idx.tolist())


def split_validation(dataset, fraction, seed=0):
    """(train, validation): a seeded `fraction` of `dataset` held out to pick the epoch, so the
    test split is used once, at the end, and its accuracy is not chosen by it."""
    if not fraction:
        return dataset, None
    if not 0 < fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1), got {fraction}")
    n = len(dataset)
    n_val = max(1, int(round(n * fraction)))
    if n_val >= n:
        raise ValueError(f"--val-fraction {fraction} leaves no training samples out of {n}")
    idx = np.random.default_rng(seed).permutation(n)
    return (torch.utils.data.Subset(dataset, sorted(idx[n_val:].tolist())),
            torch.utils.data.Subset(dataset, sorted(idx[:n_val].tolist())))
