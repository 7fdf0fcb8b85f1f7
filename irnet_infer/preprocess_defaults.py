"""Default `preprocess` settings (docs/FORMAT.md), the one place they are written: the
converter embeds them in a file (export/preprocess.py), training feeds its images through them
(export/data.py) and evaluation reads its data sets with them (irnet_infer/datasets.py), so a
model is always evaluated with the pixels it was trained on. numpy-free and torch-free: the
runtime imports it, and export/ imports it from here.
"""
from __future__ import annotations

# The official IR-Net trainers (CIFAR-10 ResNet-20/18 and VGG-Small, 1W/1A and 1W/32A) and the
# ImageNet evaluation all normalize with the ImageNet statistics, not CIFAR-10's own (their test
# transform is ToTensor + Normalize(ImageNet mean, std)).
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
IMAGENET_ARCHS = frozenset({"resnet18", "resnet34"})

# Digits are scaled once to 0..255 (irnet_infer.datasets.digits_images), so the model takes
# ordinary 8-bit images; the dataset's own mean/std (rounded, measured over the upscaled
# images) centre them.
DIGITS_MEAN, DIGITS_STD = 0.305, 0.32


def _settings(input_size, mean, std, imagenet_resize: bool) -> dict:
    c, h, w = (int(v) for v in input_size)
    # ImageNet evaluation resizes the short side to 256 then crops 224; otherwise the image is
    # taken as is (a 32x32 CIFAR image, resized only if the model's input is another size).
    resize = round(min(h, w) * 256 / 224) if imagenet_resize and min(h, w) >= 224 else min(h, w)
    return {"input_size": [c, h, w], "resize": int(resize), "channel_order": "RGB",
            "mean": [float(v) for v in mean], "std": [float(v) for v in std], "scale": 1.0 / 255.0}


def _rgb_statistics(c: int) -> tuple[list, list]:
    """ImageNet mean/std for RGB inputs; no normalization for any other channel count."""
    return (IMAGENET_MEAN, IMAGENET_STD) if c == 3 else ([0.0] * c, [1.0] * c)


def default_preprocess(arch: str | None, input_size) -> dict:
    """The settings an `arch` (a registry name without the _1w32a suffix; None: judged by the
    input size, 224 and up being ImageNet) is evaluated with by default."""
    c, h, _ = (int(v) for v in input_size)
    imagenet = arch in IMAGENET_ARCHS or (arch is None and h >= 224)
    return _settings(input_size, *_rgb_statistics(c), imagenet_resize=imagenet)


def cifar10_preprocess(input_size=(3, 32, 32)) -> dict:
    c = int(input_size[0])
    if c != 3:
        raise ValueError(f"CIFAR-10 images have 3 channels; input_size {list(input_size)} has {c}")
    return _settings(input_size, IMAGENET_MEAN, IMAGENET_STD, imagenet_resize=False)


def imagefolder_preprocess(input_size=(3, 224, 224)) -> dict:
    """Image folders: ImageNet's evaluation for inputs of 224 and up, the image as is below."""
    return default_preprocess(None, input_size)


def digits_preprocess(input_size=(3, 32, 32)) -> dict:
    """Digits: an 8-bit (0..255) image given to Model.predict goes through exactly the steps
    irnet_infer.datasets.load_digits_split applies."""
    c = int(input_size[0])
    return _settings(input_size, [DIGITS_MEAN] * c, [DIGITS_STD] * c, imagenet_resize=False)
