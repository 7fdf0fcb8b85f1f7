"""Compare an `.irb` file run by the engine with the PyTorch reference (`convert --check`).

A mismatch is real when top-1 agreement is below `min_top1` or the output's max|diff|
relative to the output scale exceeds `rel_tol`. Per-layer sign changes point at the first
layer where the two sides took a different binary decision.

The reference uses the deployment sign rule (0 -> +1), as the engine does; the model's own
forward (training-time `torch.sign`, 0 -> 0) differs exactly where an exact zero enters a
binarization. So the check also counts those zeros per binary conv, names the layers, and
compares the engine with the model's own forward: a difference there is a mismatch too."""
import json

import numpy as np
import torch

from .reference import reference_forward


def read_graph(path):
    """The file's graph (metadata), without loading its tensors."""
    from safetensors import safe_open
    with safe_open(path, framework="numpy") as f:
        return json.loads(f.metadata()["graph"])


def graph_output_name(path):
    """The graph's output tensor name, read from the file's metadata."""
    return read_graph(path)["outputs"][0]


def count_binarized_zeros(graph, reference, model=None):
    """[{name, input, zeros, total, weight_zeros, weights}] for every binary conv whose
    binarized input (bconv2d, in the reference) or standardized weight (bconv2d, bwconv2d, from
    `model`) holds exact zeros: there training-time sign(0) = 0, the deployed sign +1."""
    from .irnet import binary_weight
    modules = dict(model.named_modules()) if model is not None else {}
    rows = []
    for op in graph["ops"]:
        if op["type"] not in ("bconv2d", "bwconv2d"):
            continue
        row = {"name": op["name"], "input": op["inputs"][0], "zeros": 0, "total": 0,
               "weight_zeros": 0, "weights": 0}
        x = reference.get(op["inputs"][0])
        if op["type"] == "bconv2d" and x is not None:
            row.update(zeros=int((x == 0).sum()), total=int(x.numel()))
        if op["name"] in modules:
            w_std, _ = binary_weight(modules[op["name"]])
            row.update(weight_zeros=int((w_std == 0).sum()), weights=int(w_std.numel()))
        if row["zeros"] or row["weight_zeros"]:
            rows.append(row)
    return rows


def _own_forward(model, x):
    """The model's own eval forward (training-time sign), or None if it cannot run here."""
    was_training = model.training
    try:
        with torch.no_grad():
            return model.eval()(x).detach().cpu().numpy()
    except Exception:  # e.g. a foreign module whose forward needs CUDA
        return None
    finally:
        model.train(was_training)


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


def check_file(path, model, input_size, batch=8, seed=0, inputs=None, rel_tol=1e-3,
               min_top1=0.99):
    """Run the file with irnet_infer.Model and the reference on `inputs` (a float tensor
    (N, C, H, W), e.g. preprocessed real images), or else on seeded random inputs."""
    import irnet_infer
    if inputs is None:
        gen = torch.Generator().manual_seed(seed)
        inputs = torch.randn(batch, *input_size, generator=gen)
    x = torch.as_tensor(inputs, dtype=torch.float32)
    _, reference = reference_forward(model, x, capture=True)
    m = irnet_infer.Model(path)
    graph = read_graph(path)
    zeros = count_binarized_zeros(graph, reference, model)  # by the file's tensor names
    # The reference names tensors by fx node; report both sides by the op names of the file
    # (the names `irnet-infer info` and run_debug show).
    names = m.tensor_op_names()
    reference = {names[t]: v for t, v in reference.items() if t in names}
    engine = m.run_debug(x.numpy())
    output = names[graph["outputs"][0]]
    report = compare(reference, engine, output, rel_tol, min_top1)
    report["zeros"] = zeros
    own = _own_forward(model, x)
    if own is not None and output in engine and "error" not in report:
        got = np.asarray(engine[output], dtype=np.float32)
        diff = float(np.abs(got - own).max(initial=0))
        scale = max(float(np.abs(own).max(initial=0)), 1e-12)
        top1 = float((got.argmax(-1) == own.argmax(-1)).mean())
        report["own_forward"] = {"max_abs_diff": diff, "rel_diff": diff / scale,
                                 "top1_agreement": top1}
        report["ok"] = bool(report["ok"] and top1 >= min_top1 and diff / scale <= rel_tol)
    return report


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
    for z in report.get("zeros", []):
        what = []
        if z["zeros"]:
            what.append(f"{z['zeros']} of {z['total']} inputs")
        if z["weight_zeros"]:
            what.append(f"{z['weight_zeros']} of {z['weights']} standardized weights")
        lines.append(f"  {z['name']:<32} {' and '.join(what)} exactly 0: "
                     "training-time sign(0) = 0, deployed +1")
    own = report.get("own_forward")
    if own is not None:
        lines.append(f"against the model's own forward (training-time sign): max|diff| "
                     f"{own['max_abs_diff']:.3g} (relative {own['rel_diff']:.3g}), "
                     f"top-1 agreement {own['top1_agreement']:.1%}")
    lines.append("OK" if report["ok"] else "MISMATCH")
    return "\n".join(lines)
