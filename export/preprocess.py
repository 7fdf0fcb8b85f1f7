"""The `preprocess` metadata (docs/FORMAT.md) a converted model carries, and where each value
came from: the checkpoint, a flag, or the arch's default (irnet_infer/preprocess_defaults.py)."""
from irnet_infer.preprocess_defaults import default_preprocess


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


def format_preprocess(pre, sources):
    """One line per value: what the file embeds and where it came from."""
    def show(v):
        if isinstance(v, list):
            return "[" + ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v) + "]"
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    return "\n".join(f"  preprocess {k:<13} {show(pre[k]):<28} ({sources.get(k, '?')})" for k in pre)
