"""`convert --check-images DIR`: the `.irb` run on real image files through its own
preprocessing (irnet_infer), against the PyTorch model fed by the official-style pipeline.

The reference pipeline is torchvision's evaluation transform on PIL images, written here with
Pillow and torch (torchvision is not a dependency): `Image.open(f).convert("RGB")`, Resize
(the whole image, one `Image.resize` call), CenterCrop, ToTensor, Normalize, with the values
the file embeds. So the check covers the runtime's image path (decode, resize, crop,
normalization) as well as the network.
"""
import os

import numpy as np
import torch
from PIL import Image

from .irnet import deploy_sign

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")


def official_input(path, pre):
    """float32 (C, H, W) tensor of `path` through the torchvision-style evaluation pipeline."""
    c, th, tw = (int(v) for v in pre["input_size"])
    with Image.open(path) as im:
        img = im.convert("RGB" if c == 3 else "L")
    resize = int(pre.get("resize") or min(th, tw))
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = resize, int(resize * long / short)
    size = (new_short, new_long) if w <= h else (new_long, new_short)
    if size != img.size:
        img = img.resize(size, Image.BILINEAR)
    w, h = img.size
    if tw > w or th > h:  # CenterCrop pads with zeros first
        canvas = Image.new(img.mode, (max(w, tw), max(h, th)), 0)
        canvas.paste(img, ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0))
        img, (w, h) = canvas, canvas.size
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    pixels = np.array(img.crop((left, top, left + tw, top + th)), dtype=np.uint8).reshape(th, tw, c)
    if pre.get("channel_order", "RGB") == "BGR":
        pixels = pixels[:, :, ::-1].copy()
    t = torch.from_numpy(pixels).permute(2, 0, 1).contiguous().to(torch.float32)
    scale = float(pre.get("scale", 1 / 255))
    t = t.div(round(1 / scale)) if abs(1 / scale - round(1 / scale)) < 1e-9 / scale else t.mul(scale)
    mean = torch.as_tensor(pre["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(pre["std"], dtype=torch.float32).view(-1, 1, 1)
    return t.sub(mean).div(std)


def list_images(folder, limit=None):
    if not os.path.isdir(folder):
        raise ValueError(f"--check-images: {folder!r} is not a directory")
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise ValueError(f"--check-images: no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder!r}")
    return paths[:limit] if limit else paths


def check_images(irb_path, model, folder, limit=500, rel_tol=1e-3, min_top1=0.99):
    """Report dict: images compared, top-1 agreement, max relative logit difference, the
    images whose top-1 differs, and the images either side could not read (with why)."""
    import irnet_infer
    engine = irnet_infer.Model(irb_path)
    pre = engine.preprocess_settings
    model.eval()
    agree, worst, differ, unreadable, count = 0, 0.0, [], [], 0
    for path in list_images(folder, limit):
        try:
            ref_in = official_input(path, pre)
        except Exception as e:  # noqa: BLE001 - reported per image, never fatal
            ref_in = e
        try:
            got = engine.predict(path)
        except (ValueError, OSError) as e:
            got = e
        if isinstance(ref_in, Exception) or isinstance(got, Exception):
            unreadable.append((path, str(got if isinstance(got, Exception) else ref_in)))
            continue
        with torch.no_grad(), deploy_sign(model):
            ref = model(ref_in[None]).numpy()[0]
        count += 1
        scale = max(float(np.abs(ref).max()), 1e-12)
        worst = max(worst, float(np.abs(got - ref).max()) / scale)
        if int(np.argmax(got)) == int(np.argmax(ref)):
            agree += 1
        else:
            differ.append(path)
    top1 = agree / count if count else 0.0
    return {"images": count, "top1_agreement": top1, "rel_diff": worst, "differ": differ,
            "unreadable": unreadable, "preprocess": pre,
            "ok": bool(count and top1 >= min_top1 and worst <= rel_tol)}


def format_images_report(report):
    lines = [f"images: {report['images']} compared, top-1 agreement {report['top1_agreement']:.1%}, "
             f"max relative logit difference {report['rel_diff']:.3g}"]
    lines += [f"  top-1 differs: {p}" for p in report["differ"][:20]]
    lines += [f"  unreadable: {p}: {why}" for p, why in report["unreadable"][:20]]
    lines.append("OK" if report["ok"] else "MISMATCH")
    return "\n".join(lines)
