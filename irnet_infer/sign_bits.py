"""Binary weights <-> the packed sign words of `.irb` files (docs/FORMAT.md): the deployment
sign rule, bit 1 = -1."""
import numpy as np


def pack_signs(w: np.ndarray) -> np.ndarray:
    """Binary weights (Cout, Cin, kh, kw) -> packed sign words U64 (Cout, kh, kw, ceil(Cin/64)).

    Bit i % 64 of word i // 64 along Cin is 1 where w < 0 (-1) and 0 where w >= 0 (+1), the
    deployment sign rule; unused tail bits are 0."""
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"binary weights must be (Cout, Cin, kh, kw), got shape {w.shape}")
    cout, cin, kh, kw = w.shape
    words = (cin + 63) // 64
    bits = np.zeros((cout, kh, kw, words * 64), dtype=np.uint64)
    bits[..., :cin] = (w < 0).transpose(0, 2, 3, 1)
    shifts = np.arange(64, dtype=np.uint64)
    return (bits.reshape(cout, kh, kw, words, 64) << shifts).sum(axis=-1, dtype=np.uint64)


def unpack_signs(packed: np.ndarray, cin: int) -> np.ndarray:
    """Inverse of `pack_signs`: U64 (Cout, kh, kw, words) -> float32 +/-1 (Cout, Cin, kh, kw)."""
    shifts = np.arange(64, dtype=np.uint64)
    bits = (packed[..., None] >> shifts) & np.uint64(1)
    bits = bits.reshape(*packed.shape[:3], -1)[..., :cin]
    return (1.0 - 2.0 * bits.astype(np.float32)).transpose(0, 3, 1, 2).copy()
