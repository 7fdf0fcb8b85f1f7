"""The `preprocess` metadata (docs/FORMAT.md) a converted model carries, and where each value
came from: the checkpoint, a flag, or the arch's default."""

# The official IR-Net trainers (CIFAR-10 ResNet-20/18 and VGG-Small, 1W/1A and 1W/32A) and the
# ImageNet evaluation all normalize with the ImageNet statistics, not CIFAR-10's own.
OFFICIAL_MEAN, OFFICIAL_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IMAGENET_ARCHS = {"resnet18", "resnet34"}


def default_preprocess(arch, input_size):
    c, h, w = (int(v) for v in input_size)
    imagenet = arch in IMAGENET_ARCHS or (arch is None and h >= 224)
    mean, std = (OFFICIAL_MEAN, OFFICIAL_STD) if c == 3 else ([0.0] * c, [1.0] * c)
    # ImageNet evaluation resizes the short side to 256 then crops 224; CIFAR: the image as is.
    resize = round(min(h, w) * 256 / 224) if imagenet and min(h, w) >= 224 else min(h, w)
    return {"input_size": [c, h, w], "resize": int(resize), "channel_order": "RGB",
            "mean": list(mean), "std": list(std), "scale": 1.0 / 255.0}


def explain_preprocess(arch, input_size, from_checkpoint=None, mean=None, std=None):
    """(preprocess, sources): the defaults, overridden by the checkpoint's `preprocess`, then
    by explicit mean/std; sources maps each key to "checkpoint", "flag", "arch default" or
    "model" (input_size is always the model's own)."""
    pre = default_preprocess(arch, input_size)
    sources = {k: f"{arch} default" if arch else "default" for k in pre}
    for key, value in dict(from_checkpoint or {}).items():
        pre[key] = value
        sources[key] = "checkpoint"
    pre["input_size"] = [int(v) for v in input_size]
    sources["input_size"] = "model"
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            pre[key] = [float(v) for v in value]
            sources[key] = "flag"
    for key in ("mean", "std"):
        if len(pre[key]) != pre["input_size"][0]:
            raise ValueError(f"preprocess {key} has {len(pre[key])} values for "
                             f"{pre['input_size'][0]} input channels")
    return pre, sources


def merge_preprocess(arch, input_size, from_checkpoint=None, mean=None, std=None):
    return explain_preprocess(arch, input_size, from_checkpoint, mean, std)[0]


def format_preprocess(pre, sources):
    """One line per value: what the file embeds and where it came from."""
    def show(v):
        if isinstance(v, list):
            return "[" + ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) + "]"
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    return "\n".join(f"  preprocess {k:<13} {show(pre[k]):<28} ({sources.get(k, '?')})" for k in pre)
