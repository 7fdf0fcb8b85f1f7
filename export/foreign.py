"""Recognising binary convolutions of the official IR-Net design that are not our IRConv2d
(a user's copy of the official `IRConv2d` from htqin/IR-Net, or any look-alike).

A module is taken for one when it is an `nn.Conv2d` subclass with its own `forward` and
attributes `k` and `t` (IR-Net's EDE parameters). Which computation it does is then
established, not assumed: its forward is run once on a small random input and compared with
the two IR-Net forwards built from its own weights,

    1W/1A:  conv2d(sign(x),  sign(w_std) * 2**round(log2(mean|w_std|)), bias, ...)
    1W/32A: conv2d(x,        sign(w_std) * 2**round(log2(mean|w_std|)), bias, ...)

with w_std the per-output-channel balanced and standardized weight (export/irnet.py). When
the forward cannot run here (the official code creates tensors with `.cuda()`), the variant
comes from the arch name (`NAME_1w32a`) or the class's module (`ir_1w32a`, `ir_1w1a`).
Anything else is refused with the module's path and class.

Once recognised, such a module is run (for the converter's example pass and for the
reference of `--check`) by `deployed_forward`: the same computation with the deployment sign
rule, as `deploy_sign` does for our IRConv2d; its own forward is never traced.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .irnet import IRConv2d, binary_weight, deploy_sign_rule, standardize_weight, weight_shift


def has_own_forward(module, base):
    return type(module).forward is not base.forward


def looks_like_ir_conv(module):
    """An nn.Conv2d subclass (not ours) with its own forward and IR-Net's `k` and `t`."""
    return (isinstance(module, nn.Conv2d) and not isinstance(module, IRConv2d)
            and has_own_forward(module, nn.Conv2d)
            and hasattr(module, "k") and hasattr(module, "t"))


def _class_name(module):
    cls = type(module)
    return f"{cls.__module__}.{cls.__qualname__}"


def _probe(module):
    """(output of the module, {variant: expected output}) on a seeded random input."""
    kh, kw = module.kernel_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, module.in_channels, kh + 3, kw + 3, generator=gen)
    with torch.no_grad():
        w_std = standardize_weight(module.weight)
        w = torch.where(w_std < 0, -1.0, 1.0) * torch.pow(
            2.0, weight_shift(w_std).to(w_std.dtype)).view(-1, 1, 1, 1)
        conv = lambda inp: F.conv2d(inp, w, module.bias, module.stride, module.padding,
                                    module.dilation, module.groups)
        expected = {"1w1a": conv(torch.sign(x)), "1w32a": conv(x)}
        return module(x), expected


def _hint(module, arch_variant):
    if arch_variant is not None:
        return arch_variant
    where = type(module).__module__.lower()
    for variant in ("1w32a", "1w1a"):
        if variant in where:
            return variant
    return None


def ir_conv_variant(module, path, arch_variant=None):
    """"1w1a" or "1w32a" for a module that `looks_like_ir_conv`; ValueError naming the module
    when its forward is neither. `arch_variant` is the variant the arch name asked for."""
    what = f"module '{path}' ({_class_name(module)})"
    was_training = module.training
    module.eval()
    try:
        out, expected = _probe(module)
    except Exception as e:  # the forward does not run on CPU here: fall back on names
        variant = _hint(module, arch_variant)
        if variant is None:
            raise ValueError(
                f"{what} has IR-Net's k and t but its forward fails on CPU "
                f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}); "
                "pass arch='NAME_1w1a' or 'NAME_1w32a' to say which it is") from None
        return variant
    finally:
        module.train(was_training)
    scale = max(float(out.abs().max()), 1e-30)
    matches = [v for v, ref in expected.items()
               if out.shape == ref.shape and float((out - ref).abs().max()) <= 1e-5 * scale]
    if not matches:
        raise ValueError(f"{what} has IR-Net's k and t but its forward is neither IR-Net 1W/1A "
                         "nor 1W/32A (checked on a random input)")
    variant = matches[0]
    if arch_variant is not None and arch_variant != variant:
        raise ValueError(f"{what} computes IR-Net {variant.upper()}, but the arch says "
                         f"{arch_variant.upper()}")
    return variant


def foreign_variants(model, arch_variant=None):
    """{module path: "1w1a" | "1w32a"} for every foreign IR-Net conv of the model."""
    return {path: ir_conv_variant(m, path, arch_variant)
            for path, m in model.named_modules() if looks_like_ir_conv(m)}


def deployed_forward(module, variant):
    """The module's IR-Net forward with the deployment sign rule (x < 0 -> -1, else +1)."""
    def forward(x):
        w_std, shift = binary_weight(module)
        w = deploy_sign_rule(w_std) * torch.pow(2.0, shift.to(w_std.dtype)).view(-1, 1, 1, 1)
        a = deploy_sign_rule(x) if variant == "1w1a" else x
        return F.conv2d(a, w, module.bias, module.stride, module.padding, module.dilation,
                        module.groups)
    return forward


def deployed_overrides(model, variants):
    """{module path: deployed forward} for run_recording."""
    modules = dict(model.named_modules())
    return {path: deployed_forward(modules[path], v) for path, v in variants.items()}
