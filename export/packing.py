"""Sign-bit packing of binary weights, as docs/FORMAT.md specifies: along input channels,
64 per uint64 word, bit i%64 of word i//64 is 1 where the value is < 0 (-1), unused tail bits 0."""
import numpy as np

_BIT_VALUES = np.left_shift(np.uint64(1), np.arange(64, dtype=np.uint64))


def pack_sign_bits(w_std):
    """[Cout,Cin,kh,kw] float array (numpy or torch) -> U64 [Cout,kh,kw,ceil(Cin/64)]."""
    w = np.asarray(w_std.detach().cpu().numpy() if hasattr(w_std, "detach") else w_std)
    cout, cin, kh, kw = w.shape
    words = (cin + 63) // 64
    negative = np.zeros((cout, kh, kw, words * 64), dtype=np.uint64)
    negative[..., :cin] = (w < 0).transpose(0, 2, 3, 1)  # channels last, tail stays 0
    # Distinct powers of two never carry, so the sum is the bitwise OR.
    bits = (negative.reshape(cout, kh, kw, words, 64) * _BIT_VALUES).sum(-1, dtype=np.uint64)
    return np.ascontiguousarray(bits)


def unpack_sign_bits(bits, cin):
    """Inverse of pack_sign_bits: U64 [Cout,kh,kw,words] -> float32 +/-1 [Cout,Cin,kh,kw]."""
    set_bits = (bits[..., None] & _BIT_VALUES) != 0          # [Cout,kh,kw,words,64]
    set_bits = set_bits.reshape(*bits.shape[:3], -1)[..., :cin]
    signs = np.where(set_bits, np.float32(-1), np.float32(1))
    return signs.transpose(0, 3, 1, 2)


def tail_bits(bits, cin):
    """The bits of the last word past Cin (must all be 0); a U64 array [Cout,kh,kw]."""
    used = cin - 64 * (bits.shape[-1] - 1)
    if used == 64:
        return np.zeros(bits.shape[:3], dtype=np.uint64)
    return bits[..., -1] >> np.uint64(used)
