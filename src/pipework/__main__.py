"""The command line, ``python -m pipework <command>``: it parses arguments and dispatches.

Each command is one function that adds its subparser and names the coroutine
that does the work, listed in `_COMMANDS`; the work itself lives in its own
module. Every command runs through `_run`, the one place an event loop is
started: `pipework.run`, on the loop that ``--loop`` names (uvloop when it is
installed, by default).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ._demo import DEFAULT_CONCURRENCY, DEFAULT_COUNT, run_demo
from ._loop import LOOP_NAMES, LoopName, loop_factory, run

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
"""What a subcommand runs: its parsed arguments in, an exit code out."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command that ``argv`` names (``sys.argv[1:]`` by default); return its exit code."""
    args = _parser().parse_args(argv)
    return _run(args.command, args)


def _run(command: Command, args: argparse.Namespace) -> int:
    return run(command, args, loop=args.loop)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipework",
        description="Streaming pipelines that mix async I/O with CPU-heavy work.",
    )
    _add_loop_option(parser, default="auto")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in _COMMANDS:
        add(commands)
    return parser


# demo ----------------------------------------------------------------------


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo",
        help="fetch records from a local HTTP server, compute features on processes, score them",
        description="Run the main job end to end against an embedded server; print its report.",
    )
    demo.add_argument("--count", type=_positive, default=DEFAULT_COUNT, help="records to fetch")
    demo.add_argument(
        "--workers", type=_positive, default=None, help="processes (default: one per core)"
    )
    demo.add_argument(
        "--concurrency",
        type=_positive,
        default=DEFAULT_CONCURRENCY,
        help="requests in flight",
    )
    _add_loop_option(demo)
    demo.set_defaults(command=_demo)


async def _demo(args: argparse.Namespace) -> int:
    return await run_demo(args.count, workers=args.workers, concurrency=args.concurrency)


# shared --------------------------------------------------------------------


def _add_loop_option(parser: argparse.ArgumentParser, default: str = argparse.SUPPRESS) -> None:
    """Accept ``--loop`` before the command and after it.

    A subcommand's copy defaults to SUPPRESS, so that it sets ``loop`` only
    when given, rather than overwriting a value given before the command.
    """
    parser.add_argument(
        "--loop",
        type=_loop_name,
        default=default,
        metavar="{" + ",".join(LOOP_NAMES) + "}",
        help="event loop: auto (the default) is uvloop when installed, else asyncio",
    )


def _loop_name(text: str) -> LoopName:
    """Parse a ``--loop`` value, refusing a loop that is not installed before anything runs."""
    for name in LOOP_NAMES:
        if text == name:
            try:
                loop_factory(name)
            except ImportError as missing:
                raise argparse.ArgumentTypeError(str(missing)) from None
            return name
    choices = ", ".join(LOOP_NAMES)
    raise argparse.ArgumentTypeError(f"must be one of {choices}, not {text!r}")


def _positive(text: str) -> int:
    """Parse a whole number of at least 1, with a message that says so."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


_COMMANDS: tuple[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None], ...] = (
    _add_demo,
)
"""Each adds one subcommand; a new command is one more function here."""


if __name__ == "__main__":
    sys.exit(main())
