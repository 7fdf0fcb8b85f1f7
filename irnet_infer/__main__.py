"""`python -m irnet_infer COMMAND ...` (also the `irnet-infer` console script).

A thin dispatcher: each command lives in its own module exposing `add_parser(subparsers)`,
which registers its arguments and sets `func(args) -> exit code`. To add a command (predict,
info, bench, ...), write the module and list it in COMMANDS.
"""
import argparse
import sys

from irnet_infer import cli_bench, cli_convert, cli_eval, cli_info, cli_predict
from irnet_infer.paths import describe_os_error

COMMANDS = [cli_predict, cli_info, cli_bench, cli_eval, cli_convert]

EPILOG = """examples:
  irnet-infer predict model.irb cat.png --top 3
  irnet-infer info model.irb
  irnet-infer bench model.irb --threads 1 --per-layer
  irnet-infer eval model.irb --data digits
  irnet-infer convert model.pth model.irb --check     (needs torch)

run `irnet-infer COMMAND --help` for a command's options and examples.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(prog="irnet-infer",
                                     description="Fast CPU inference for IR-Net binary networks.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    # `convert` hands every argument, --help included, to the converter's own parser.
    args, extra = parser.parse_known_args(argv)
    if args.command == "convert":
        args.args = extra + args.args
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except OSError as e:
        # Missing or unreadable files: one line, worded alike in every command.
        print(f"error: {describe_os_error(e)}", file=sys.stderr)
        return 2
    except (ValueError, ImportError) as e:
        # Bad input (malformed model or dataset, bad arguments): one line, no traceback.
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
