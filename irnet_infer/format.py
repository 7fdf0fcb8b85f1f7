"""Read, write and check `.irb` model files (docs/FORMAT.md): the one import for all of it.

An `.irb` file is a safetensors file with irnet-infer metadata. The reader checks the file's
integrity before the engine sees it: header, metadata keys and version, graph structure, tensor
references, dtypes, finite values and the content hash. The engine then checks shapes and
attributes again as it plans, and its errors are raised as `IrbFormatError` too.

Each job has its own file: what a file holds and its limits (irb_spec.py), reading
(irb_read.py), writing (irb_write.py), the structure checks both share (irb_validate.py), and
the packed sign bits of binary weights (sign_bits.py).
"""
from irnet_infer.irb_read import parse_irb, read_irb
from irnet_infer.irb_spec import (FORMAT, FORMAT_VERSION, MAX_ACTIVATION_ELEMENTS, MAX_HEADER_BYTES,
                                  MAX_OPS, IrbFile, IrbFormatError, content_hash)
from irnet_infer.irb_validate import OP_TYPES, validate
from irnet_infer.irb_write import write_irb
from irnet_infer.sign_bits import pack_signs, unpack_signs

__all__ = ["FORMAT", "FORMAT_VERSION", "MAX_ACTIVATION_ELEMENTS", "MAX_HEADER_BYTES", "MAX_OPS",
           "OP_TYPES", "IrbFile", "IrbFormatError", "content_hash", "pack_signs", "parse_irb",
           "read_irb", "unpack_signs", "validate", "write_irb"]
