"""The command line, ``python -m pipework <command>``: it parses arguments and dispatches.

Each command is one function that adds its subparser and names the coroutine
that does the work, listed in `_COMMANDS`; the work itself lives in its own
module. Every command runs through `_run`, the one place an event loop is
started, so choosing another loop later changes one function.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from ._demo import DEFAULT_CONCURRENCY, DEFAULT_COUNT, run_demo

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
"""What a subcommand runs: its parsed arguments in, an exit code out."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command that ``argv`` names (``sys.argv[1:]`` by default); return its exit code."""
    args = _parser().parse_args(argv)
    command: Command = args.command
    return _run(command(args))


def _run(work: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(work)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipework",
        description="Streaming pipelines that mix async I/O with CPU-heavy work.",
    )
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
    demo.set_defaults(command=_demo)


async def _demo(args: argparse.Namespace) -> int:
    return await run_demo(args.count, workers=args.workers, concurrency=args.concurrency)


# shared --------------------------------------------------------------------


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
