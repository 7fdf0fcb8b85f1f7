"""`irnet-infer convert ...`: the PyTorch-to-.irb converter of an installed package.

The converter is the checkout's `export/` package (`python -m export.convert`), installed as
`irnet_infer.export` so that a wheel claims no generic top-level name. It needs torch, which
the runtime does not: the import happens only when this command runs, and a missing torch
is one line saying what to install."""
import argparse
import importlib


def _converter_main():
    # Installed wheel: irnet_infer.export. A checkout run without installing: export.
    for name in ("irnet_infer.export.convert", "export.convert"):
        try:
            return importlib.import_module(name).main
        except ModuleNotFoundError as e:
            if e.name == "torch":
                raise ImportError("irnet-infer convert needs PyTorch: pip install 'irnet-infer[train]' "
                                  "(CPU build: see the README)") from None
            if e.name not in (name, name.rsplit(".", 1)[0], "irnet_infer.export"):
                raise
    raise ImportError("the converter (irnet_infer.export) is not installed with this package")


def add_parser(subparsers):
    # Every argument, --help included, goes to the converter's own parser.
    p = subparsers.add_parser("convert", add_help=False,
                              help="convert a PyTorch IR-Net checkpoint or model to .irb (needs torch)")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=run)
    return p


def run(args):
    return _converter_main()(args.args, prog="irnet-infer convert")
