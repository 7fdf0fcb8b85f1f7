"""Convert a trained IR-Net model to an `.irb` file (docs/FORMAT.md).

    python -m export.convert model.pth model.irb [--arch NAME] [--num-classes N]
        [--input-size C H W] [--mean M M M] [--std S S S] [--classes FILE] [--check]
        [--check-images DIR]
"""
import argparse
import sys

import torch
import torch.nn as nn

from .graph_builder import build_graph
from .irnet import deploy_sign
from .models import ARCH_DEFAULTS, MODELS, create_model, infer_num_classes, load_checkpoint_state
from .preprocess import explain_preprocess, format_preprocess
from .tracing import run_recording, trace

PRODUCER_NAME = "irnet-infer export"
PRODUCER_VERSION = "0.1.0"


def _canonical_arch(arch):
    """Registry name for an arch; the official code names them e.g. 'resnet18_1w1a'."""
    if arch is None:
        return None
    name = str(arch)
    if name not in MODELS and name.endswith("_1w1a"):
        name = name[: -len("_1w1a")]
    if name not in MODELS:
        raise ValueError(f"unknown arch '{arch}' (known: {', '.join(sorted(MODELS))})")
    return name


def _load_file(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"checkpoint not found: {path}") from None
    except Exception as e:  # unpickling refused or corrupt file: say which, in one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"cannot load checkpoint {path}: {first}") from None


def _is_state_dict(obj):
    return isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values())


def load_model(source, arch=None, num_classes=None, input_size=None):
    """(model, arch, input_size, checkpoint preprocess, checkpoint classes) from a module,
    a checkpoint dict, a bare state_dict or a path to one of those."""
    if isinstance(source, str):
        source = _load_file(source)
    if isinstance(source, nn.Module):
        size = input_size or getattr(source, "input_size", None)
        if size is None and arch is not None:
            size = ARCH_DEFAULTS[_canonical_arch(arch)]["input_size"]
        if size is None:
            raise ValueError("input_size is needed for a model without an `input_size` attribute")
        return source, arch, tuple(int(v) for v in size), None, None
    if not isinstance(source, dict):
        raise ValueError(f"expected a checkpoint dict or a state_dict, got {type(source).__name__}")
    ckpt = {"state_dict": source} if _is_state_dict(source) else source
    state = ckpt.get("state_dict")
    if not _is_state_dict(state):
        raise ValueError("checkpoint has no 'state_dict' of tensors")
    arch = _canonical_arch(arch or ckpt.get("arch"))
    if arch is None:
        raise ValueError("architecture unknown: pass --arch (one of "
                         f"{', '.join(sorted(MODELS))})")
    state = load_checkpoint_state(state, arch)
    kwargs = dict(ckpt.get("arch_kwargs") or {})
    pre = ckpt.get("preprocess")
    num_classes = (num_classes or kwargs.get("num_classes")
                   or infer_num_classes(arch, state))
    input_size = input_size or kwargs.get("input_size") or (pre or {}).get("input_size")
    model = create_model(arch, num_classes=num_classes, input_size=input_size)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches; torch's message spans many lines
        details = [l.strip() for l in str(e).splitlines() if "size mismatch" in l]
        raise ValueError(f"state_dict does not match arch '{arch}': "
                         f"{details[0] if details else str(e).splitlines()[0]}"
                         + (f" (and {len(details) - 1} more)" if len(details) > 1 else "")
                         ) from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"state_dict does not match arch '{arch}': "
                         f"missing {result.missing_keys[:5]}, "
                         f"unexpected {result.unexpected_keys[:5]}")
    return model, arch, model.input_size, pre, ckpt.get("classes")


def export_graph(model, input_size):
    """(graph, tensors) of the model in eval mode with the deployment sign rule."""
    model.eval()
    example = torch.zeros(2, *input_size)  # batch of 2: BatchNorm1d and views see a real N
    with torch.no_grad(), deploy_sign(model):
        gm = trace(model)
        _, values = run_recording(gm, example)
        return build_graph(gm, values, input_size)


def read_classes(path):
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _output_size(model, input_size):
    with torch.no_grad():
        return int(model.eval()(torch.zeros(1, *input_size)).shape[-1])


def convert(model_or_checkpoint, out_path, arch=None, num_classes=None, input_size=None,
            mean=None, std=None, classes=None, check=False, check_images=None):
    """Write `out_path`; returns {"graph", "preprocess", "check"} (check report or None).
    `classes` is a list or a path to a file with one class name per line; `check_images`, a
    folder of images to compare on (report in result["check_images"])."""
    try:
        from irnet_infer.format import write_irb
    except ImportError as e:
        raise ValueError(f"irnet_infer.format.write_irb is not available ({e})") from None
    model, arch, size, ckpt_pre, ckpt_classes = load_model(
        model_or_checkpoint, arch, num_classes, input_size)
    graph, tensors = export_graph(model, size)
    preprocess, sources = explain_preprocess(arch, size, ckpt_pre, mean, std)
    if isinstance(classes, str):
        classes = read_classes(classes)
    classes = list(classes) if classes is not None else ckpt_classes
    if classes is not None and len(classes) != _output_size(model, size):
        raise ValueError(f"{len(classes)} class names for {_output_size(model, size)} outputs")
    producer = {"name": PRODUCER_NAME, "version": PRODUCER_VERSION,
                "arch": arch or type(model).__name__, "torch": torch.__version__}
    write_irb(out_path, graph, tensors, preprocess, classes, producer)
    report = None
    if check:
        from .check import check_file
        report = check_file(out_path, model, size)
    images_report = None
    if check_images is not None:
        from .check_images import check_images as run_check_images
        images_report = run_check_images(out_path, model, check_images)
    return {"graph": graph, "preprocess": preprocess, "preprocess_sources": sources,
            "check": report, "check_images": images_report}


def _parser():
    p = argparse.ArgumentParser(prog="python -m export.convert",
                                description="Convert an IR-Net checkpoint to an .irb file.")
    p.add_argument("checkpoint")
    p.add_argument("output")
    p.add_argument("--arch", choices=sorted(MODELS))
    p.add_argument("--num-classes", type=int)
    p.add_argument("--input-size", type=int, nargs=3, metavar=("C", "H", "W"))
    p.add_argument("--mean", type=float, nargs="+")
    p.add_argument("--std", type=float, nargs="+")
    p.add_argument("--classes", metavar="FILE", help="class names, one per line")
    p.add_argument("--check", action="store_true",
                   help="load the file with irnet_infer and compare with the reference")
    p.add_argument("--check-images", metavar="DIR",
                   help="compare on the images under DIR: the file's own preprocessing vs the "
                        "PyTorch model fed by the torchvision-style evaluation pipeline")
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        result = convert(args.checkpoint, args.output, arch=args.arch,
                         num_classes=args.num_classes, input_size=args.input_size,
                         mean=args.mean, std=args.std, classes=args.classes, check=args.check,
                         check_images=args.check_images)
    except (ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(result['graph']['ops'])} ops")
    print(format_preprocess(result["preprocess"], result["preprocess_sources"]))
    if result["check"] is not None:
        from .check import format_report
        print(format_report(result["check"]))
        if not result["check"]["ok"]:
            print("error: engine output does not match the reference", file=sys.stderr)
            return 1
    if result["check_images"] is not None:
        from .check_images import format_images_report
        print(format_images_report(result["check_images"]))
        if not result["check_images"]["ok"]:
            print("error: on the images, the file does not match the reference", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
