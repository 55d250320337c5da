"""The ``trainstats`` command: a thin dispatcher over sub-commands.

Each sub-command lives in ``trainstats/commands/<name>.py`` and defines
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when their
sub-command runs, so ``trainstats --help`` never pays for TensorFlow.

Every command runs behind :func:`trainstats.native_logs.filter_native_logs` (TensorFlow's start-up
INFO lines and the cuInit failure of a GPU-less machine are not shown; warnings and errors are),
and exits quietly with status 141 (128 + SIGPIPE, as a shell tool killed by the signal would)
when its output pipe closes early, as in ``trainstats inspect RUN | head -2``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

#: sub-command name -> (module under trainstats.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run a whole memorization study in miniature (build data, noise, train, analyze, report)"),
    "build-varmisuse": ("build_varmisuse", "build GREAT-format VarMisuse data from a Python source tree"),
    "noise": ("noise", "write a noisy copy of GREAT-format data plus a per-sample noise manifest"),
    "analyze": ("analyze", "score memorization in run directories and write tables, plots and a report"),
    "great": ("great", "train a GREAT checkout (VHellendoorn/ICLR20-Great) with per-sample statistics"),
    "inspect": ("inspect", "print a run directory's metadata and row counts"),
    "migrate": ("migrate", "upgrade a run directory to the current layout in place (safe to interrupt and rerun)"),
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainstats",
        description="Per-sample training statistics: capture, noise, memorization analysis.",
    )
    from trainstats import __version__

    parser.add_argument("--version", action="version", version=f"trainstats {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(f"trainstats.commands.{module_name}")
            module.add_arguments(p)
            p.set_defaults(_module=module)
    return parser


#: exit status after the reader of our output went away (128 + SIGPIPE)
BROKEN_PIPE_STATUS = 141


def main(argv: Sequence[str] | None = None) -> int:
    from trainstats.native_logs import filter_native_logs

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            with filter_native_logs():
                return _main(argv)
        finally:
            if sys.stdout is not None:
                sys.stdout.flush()   # a closed pipe shows here, not in the interpreter's exit
    except BrokenPipeError:
        _discard_stdout()
        return BROKEN_PIPE_STATUS


def _main(argv: list[str]) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args._module.run(args) or 0)


def _discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's final flush of the rest of the
    buffered output cannot fail again (the recipe of Python's ``signal`` module docs)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
