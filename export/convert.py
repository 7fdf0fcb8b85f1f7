"""Convert a trained IR-Net model to an `.irb` file (docs/FORMAT.md).

    python -m export.convert model.pth model.irb [--arch NAME | --model PKG.MOD:FACTORY]
        [--num-classes N] [--input-size C H W] [--mean M M M] [--std S S S]
        [--classes FILE] [--check] [--check-images DIR]
"""
import argparse
import importlib
import re
import sys

import torch
import torch.nn as nn

from .foreign import deployed_overrides, foreign_variants
from .graph_builder import build_graph
from .irnet import deploy_sign
from .models import (ARCH_DEFAULTS, W32A_SUFFIX, arch_names, create_model, infer_num_classes,
                     load_checkpoint_state, split_arch)
from .preprocess import explain_preprocess, format_preprocess
from .tracing import run_recording, trace

PRODUCER_NAME = "irnet-infer export"
PRODUCER_VERSION = "0.1.0"


def _canonical_arch(arch):
    """Registry name for an arch: NAME (1W/1A) or NAME_1w32a; the official code also names
    the 1W/1A networks e.g. 'resnet18_1w1a'."""
    if arch is None:
        return None
    base, variant = split_arch(arch)
    return base + W32A_SUFFIX if variant == "1w32a" else base


def _explicit_variant(arch):
    """"1w1a"/"1w32a" when the arch name carries the suffix, else None."""
    if arch is None:
        return None
    name = str(arch)
    return "1w32a" if name.endswith(W32A_SUFFIX) else "1w1a" if name.endswith("_1w1a") else None


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default (zip) format
_PICKLE_PROTOCOL = 0x80      # torch.save's legacy format: a pickle, protocol 2 or later

WHOLE_MODULE_HELP = (
    "it holds pickled Python objects (a whole model saved with torch.save(model)?), which are "
    "not unpickled here because that can run arbitrary code. Either save the weights: "
    "torch.save(model.state_dict(), 'weights.pth') and convert with --arch NAME or "
    "--model PKG.MOD:FACTORY, or convert the module in Python: "
    "from export.convert import convert; convert(model, 'model.irb')")


def _load_file(path):
    from irnet_infer.paths import require_file
    require_file(path, "checkpoint")  # the wording of every command's path errors
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as e:
        from irnet_infer.paths import describe_os_error
        raise ValueError(describe_os_error(e)) from None
    if head != _ZIP_MAGIC and (not head or head[0] != _PICKLE_PROTOCOL):
        raise ValueError(f"{path} is not a PyTorch checkpoint (neither torch.save's zip "
                         "format nor a pickle); expected a file written by torch.save")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused or corrupt file: say which, in one line
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        if "Weights only load failed" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (first: {found.group(1)})" if found else ""
            raise ValueError(f"cannot load {path}: {WHOLE_MODULE_HELP}{what}") from None
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise ValueError(f"cannot load checkpoint {path}: {first}") from None


def model_from_factory(spec, num_classes=None):
    """The nn.Module returned by `package.module:factory` (called with num_classes= when
    given). The import runs that code: it is the user's own network definition."""
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--model expects package.module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as e:
        raise ValueError(f"--model {spec}: cannot import {module_name} ({e})") from None
    except AttributeError:
        raise ValueError(f"--model {spec}: {module_name} has no attribute {attr!r}") from None
    model = factory(num_classes=num_classes) if num_classes is not None else factory()
    if not isinstance(model, nn.Module):
        raise ValueError(f"--model {spec} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def load_into(model, source):
    """`model` with the state_dict of a checkpoint path/dict loaded into it."""
    if isinstance(source, str):
        source = _load_file(source)
    state = source.get("state_dict", source) if isinstance(source, dict) else None
    if not _is_state_dict(state):
        raise ValueError("checkpoint has no 'state_dict' of tensors")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"state_dict does not match the model: missing "
                         f"{result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
    return model


def _is_state_dict(obj):
    return isinstance(obj, dict) and obj and all(torch.is_tensor(v) for v in obj.values())


def load_model(source, arch=None, num_classes=None, input_size=None, notes=None):
    """(model, arch, input_size, checkpoint preprocess, checkpoint classes) from a module,
    a checkpoint dict, a bare state_dict or a path to one of those. Lines for the user
    (the IR-Net variant assumed for a state_dict) are appended to `notes`."""
    if isinstance(source, str):
        source = _load_file(source)
    if isinstance(source, nn.Module):
        size = input_size or getattr(source, "input_size", None)
        if size is None and arch is not None:
            size = ARCH_DEFAULTS[split_arch(arch)[0]]["input_size"]
        if size is None:
            raise ValueError("input_size is needed for a model without an `input_size` "
                             "attribute (--input-size C H W)")
        return source, arch, tuple(int(v) for v in size), None, None
    if not isinstance(source, dict):
        raise ValueError(f"expected a checkpoint dict or a state_dict, got {type(source).__name__}")
    ckpt = {"state_dict": source} if _is_state_dict(source) else source
    state = ckpt.get("state_dict")
    if not _is_state_dict(state):
        raise ValueError("checkpoint has no 'state_dict' of tensors")
    named = arch or ckpt.get("arch")
    arch = _canonical_arch(named)
    if arch is None:
        raise ValueError("architecture unknown: pass --arch (one of "
                         f"{', '.join(arch_names())})")
    if notes is not None:
        base, variant = split_arch(arch)
        if _explicit_variant(named) is None and variant == "1w1a":
            notes.append(f"variant: IR-Net 1W/1A assumed (binary weights and activations); "
                         f"a 1W/32A checkpoint (float activations, same keys) needs "
                         f"--arch {base}{W32A_SUFFIX}")
        else:
            notes.append(f"variant: IR-Net {variant.upper()} (arch '{arch}')")
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


def export_graph(model, input_size, variant=None):
    """(graph, tensors) of the model in eval mode with the deployment sign rule. `variant`
    ("1w1a"/"1w32a"/None) is what foreign IR-Net convs are said to be when their forward
    cannot be run here (export/foreign.py)."""
    model.eval()
    example = torch.zeros(2, *input_size)  # batch of 2: BatchNorm1d and views see a real N
    foreign = foreign_variants(model, variant)
    with torch.no_grad(), deploy_sign(model):
        gm = trace(model)
        _, values = run_recording(gm, example, deployed_overrides(model, foreign))
        return build_graph(gm, values, input_size, foreign)


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
    notes = []
    model, arch_name, size, ckpt_pre, ckpt_classes = load_model(
        model_or_checkpoint, arch, num_classes, input_size, notes)
    graph, tensors = export_graph(model, size, _explicit_variant(arch))
    if not notes:  # a model object: its binary convs say which variant it is
        notes.append(_variant_note(graph))
    base_arch = split_arch(arch_name)[0] if arch_name is not None else None
    preprocess, sources = explain_preprocess(base_arch, size, ckpt_pre, mean, std)
    if isinstance(classes, str):
        classes = read_classes(classes)
    classes = list(classes) if classes is not None else ckpt_classes
    if classes is not None and len(classes) != _output_size(model, size):
        raise ValueError(f"{len(classes)} class names for {_output_size(model, size)} outputs")
    producer = {"name": PRODUCER_NAME, "version": PRODUCER_VERSION,
                "arch": arch_name or type(model).__name__, "torch": torch.__version__}
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
            "check": report, "check_images": images_report, "notes": notes}


def _variant_note(graph):
    types = [op["type"] for op in graph["ops"]]
    n1, n32 = types.count("bconv2d"), types.count("bwconv2d")
    return (f"variant: from the model's binary convs: {n1} IR-Net 1W/1A (binary activations), "
            f"{n32} 1W/32A (float activations)")


EXAMPLES = """examples:
  python -m export.convert model.pth model.irb
      a checkpoint written by export.train ({'arch', 'state_dict', ...})
  python -m export.convert resnet20_1w1a.pth.tar model.irb --arch resnet20 --check
      an official IR-Net checkpoint (DataParallel 'module.' keys are fine)
  python -m export.convert weights.pth model.irb --arch resnet20_1w32a
      a 1W/32A checkpoint: binary weights, float activations (same keys as 1W/1A)
  python -m export.convert weights.pth model.irb --model mynets.binary:make_net --input-size 3 32 32
      your own network: mynets/binary.py defines make_net() returning the nn.Module

A whole pickled model (torch.save(model)) is not loaded: save model.state_dict(), or call
export.convert.convert(model, 'model.irb') from Python."""


def _parser(prog="python -m export.convert"):
    p = argparse.ArgumentParser(
        prog=prog, epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Convert an IR-Net PyTorch checkpoint to an .irb file for irnet_infer.")
    p.add_argument("checkpoint", help="the .pth file: a state_dict, or a dict with "
                   "'state_dict' (and optionally 'arch', 'preprocess', 'classes')")
    p.add_argument("output", help="the .irb file to write")
    p.add_argument("--arch", choices=arch_names(), metavar="NAME",
                   help="network of a checkpoint without 'arch': one of %(choices)s. "
                        "NAME_1w32a is the 1W/32A twin (binary weights, float activations); "
                        "without it a state_dict is taken as 1W/1A, and the converter says so")
    p.add_argument("--model", metavar="PKG.MOD:FACTORY",
                   help="your own network instead of --arch: the factory is imported and "
                        "called (with num_classes= if --num-classes is given), and the "
                        "checkpoint's state_dict loaded into it")
    p.add_argument("--num-classes", type=int,
                   help="outputs of the classifier (default: read from the checkpoint)")
    p.add_argument("--input-size", type=int, nargs=3, metavar=("C", "H", "W"),
                   help="per-sample input shape (default: the arch's, e.g. 3 32 32 for the "
                        "CIFAR nets, 3 224 224 for ImageNet)")
    p.add_argument("--mean", type=float, nargs="+", metavar="M",
                   help="per-channel mean subtracted from pixels in 0..1 before the network "
                        "(one value per input channel; default: the arch's dataset)")
    p.add_argument("--std", type=float, nargs="+", metavar="S",
                   help="per-channel std the pixels are divided by after the mean")
    p.add_argument("--classes", metavar="FILE", help="class names, one per line")
    p.add_argument("--check", action="store_true",
                   help="load the file with irnet_infer and compare with the reference, per "
                        "layer; also counts exact zeros entering each binarization (where "
                        "training-time sign(0) = 0 differs from the deployed +1) and compares "
                        "with the model's own forward")
    p.add_argument("--check-images", metavar="DIR",
                   help="compare on the images under DIR: the file's own preprocessing vs the "
                        "PyTorch model fed by the torchvision-style evaluation pipeline")
    return p


def main(argv=None, prog="python -m export.convert"):
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.arch and args.model:
        parser.error("give --arch or --model, not both")
    try:
        source = args.checkpoint
        if args.model:
            source = load_into(model_from_factory(args.model, args.num_classes), source)
        result = convert(source, args.output, arch=args.arch,
                         num_classes=args.num_classes, input_size=args.input_size,
                         mean=args.mean, std=args.std, classes=args.classes, check=args.check,
                         check_images=args.check_images)
    except (ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for note in result["notes"]:
        print(note)
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
