"""The ``neuroplastic`` command: one entry point, a subcommand per job.

Bad input ends with exit code 2 and one line on stderr, before anything is written. The parser is
built from :mod:`neuroplastic.cli.arguments`, which imports neither torch nor the library: ``--help``
answers at once, and a command's module is imported when it runs.
"""
from __future__ import annotations

import argparse
import sys

from neuroplastic.cli import arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise SystemExit(_fail(message))


def _fail(message: str) -> int:
    print(f"neuroplastic: error: {message}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuroplastic", description="Spiking neural networks and the learning rules "
                     "of neuromorphic computing. Bad input exits with code 2.")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    arguments.register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    finished = False
    try:
        from neuroplastic.devices import keep_freed_memory
        from neuroplastic.fused.extension import check_environment  # the kernels' settings, before any output

        check_environment()
        keep_freed_memory()  # large tensors reused, not page-faulted in afresh at every pass
        args.handler(args)
        finished = True
    except ValueError as error:  # UsageError and every parameter check raise ValueError
        return _fail(str(error))
    except OSError as error:  # an output folder that cannot be written, a file that cannot be read
        return _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "))
    finally:
        _leave_process_group(finished)
    return 0


def _leave_process_group(finished: bool) -> None:
    """Under torchrun: end the process group a command started (a process left with one open may abort
    at exit and take the others down): :func:`~neuroplastic.training.distributed.end_process_group`,
    imported only where torch.distributed already is."""
    if "torch.distributed" in sys.modules:
        from neuroplastic.training.distributed import end_process_group

        end_process_group(finished=finished)


if __name__ == "__main__":
    sys.exit(main())
