"""Default `preprocess` metadata (docs/FORMAT.md) for a model's input size and family."""

CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IMAGENET_ARCHS = {"resnet18", "resnet34"}


def default_preprocess(arch, input_size):
    c, h, w = (int(v) for v in input_size)
    imagenet = arch in IMAGENET_ARCHS or (arch is None and h >= 224)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if imagenet else (CIFAR_MEAN, CIFAR_STD)
    if c != 3:  # the standard statistics are for RGB; anything else passes values through
        mean, std = [0.0] * c, [1.0] * c
    # ImageNet evaluation resizes the short side to 256 then crops 224; small inputs: no crop.
    resize = round(h * 256 / 224) if imagenet and h >= 224 else h
    return {"input_size": [c, h, w], "resize": int(resize), "channel_order": "RGB",
            "mean": list(mean), "std": list(std), "scale": 1.0 / 255.0}


def merge_preprocess(arch, input_size, from_checkpoint=None, mean=None, std=None):
    """Defaults, overridden by the checkpoint's `preprocess`, then by explicit mean/std."""
    pre = default_preprocess(arch, input_size)
    pre.update(dict(from_checkpoint or {}))
    pre["input_size"] = [int(v) for v in input_size]  # always the model's true input
    if mean is not None:
        pre["mean"] = [float(v) for v in mean]
    if std is not None:
        pre["std"] = [float(v) for v in std]
    for key in ("mean", "std"):
        if len(pre[key]) != pre["input_size"][0]:
            raise ValueError(f"preprocess {key} has {len(pre[key])} values for "
                             f"{pre['input_size'][0]} input channels")
    return pre
