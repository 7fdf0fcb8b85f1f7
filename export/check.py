"""Compare an `.irb` file run by the engine with the PyTorch reference (`convert --check`).

A mismatch is real when top-1 agreement is below `min_top1` or the output's max|diff|
relative to the output scale exceeds `rel_tol`. Per-layer sign changes point at the first
layer where the two sides took a different binary decision."""
import json

import numpy as np
import torch

from .reference import reference_forward


def graph_output_name(path):
    """The graph's output tensor name, read from the file's metadata."""
    from safetensors import safe_open
    with safe_open(path, framework="numpy") as f:
        return json.loads(f.metadata()["graph"])["outputs"][0]


def compare(reference, engine, output_name, rel_tol=1e-3, min_top1=0.99):
    """Report dict from {name: reference tensor} and {name: engine array} (batch dim first)."""
    layers = []
    for name, ref in reference.items():
        if name not in engine:
            continue
        ref = ref.detach().cpu().numpy() if torch.is_tensor(ref) else np.asarray(ref)
        got = np.asarray(engine[name], dtype=np.float32)
        if got.shape != ref.shape:
            layers.append({"name": name, "shape_mismatch": [list(ref.shape), list(got.shape)]})
            continue
        layers.append({"name": name, "max_abs_diff": float(np.abs(got - ref).max(initial=0)),
                       "sign_changes": int(((got < 0) != (ref < 0)).sum())})
    report = {"layers": layers, "ok": False}
    if output_name not in engine or output_name not in reference:
        report["error"] = f"output '{output_name}' missing"
        return report
    ref_out = reference[output_name].detach().cpu().numpy()
    got_out = np.asarray(engine[output_name], dtype=np.float32)
    if got_out.shape != ref_out.shape:
        report["error"] = f"output shape {got_out.shape} != reference {ref_out.shape}"
        return report
    max_diff = float(np.abs(got_out - ref_out).max(initial=0))
    scale = max(float(np.abs(ref_out).max(initial=0)), 1e-12)
    top1 = float((got_out.argmax(-1) == ref_out.argmax(-1)).mean())
    report.update(max_abs_diff=max_diff, rel_diff=max_diff / scale, top1_agreement=top1,
                  ok=bool(top1 >= min_top1 and max_diff / scale <= rel_tol
                          and not any("shape_mismatch" in l for l in layers)))
    return report


def check_file(path, model, input_size, batch=8, seed=0):
    """Run the file with irnet_infer.Model and the reference on seeded random inputs."""
    import irnet_infer
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *input_size, generator=gen)
    _, reference = reference_forward(model, x, capture=True)
    m = irnet_infer.Model(path)
    # The reference names tensors by fx node; report both sides by the op names of the file
    # (the names `irnet-infer info` and run_debug show).
    names = m.tensor_op_names()
    reference = {names[t]: v for t, v in reference.items() if t in names}
    return compare(reference, m.run_debug(x.numpy()), names[graph_output_name(path)])


def format_report(report):
    lines = []
    for layer in report["layers"]:
        if "shape_mismatch" in layer:
            ref, got = layer["shape_mismatch"]
            lines.append(f"  {layer['name']:<32} shape mismatch: reference {ref}, engine {got}")
        else:
            lines.append(f"  {layer['name']:<32} max|diff| {layer['max_abs_diff']:.3g}"
                         f"  sign changes {layer['sign_changes']}")
    if "error" in report:
        lines.append(f"error: {report['error']}")
    else:
        lines.append(f"output max|diff| {report['max_abs_diff']:.3g} "
                     f"(relative {report['rel_diff']:.3g}), "
                     f"top-1 agreement {report['top1_agreement']:.1%}")
    lines.append("OK" if report["ok"] else "MISMATCH")
    return "\n".join(lines)
