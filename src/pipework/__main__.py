"""The command line, ``python -m pipework <command>``: it parses arguments and dispatches.

Each command is one function that adds its subparser and names the coroutine
that does the work, listed in `_COMMANDS`; the work itself lives in its own
module. Every command runs through `_run`, the one place an event loop is
started: `pipework.run_main`, on the loop that ``--loop`` names (uvloop when it is
installed, by default).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from ._demo import DemoOptions
from ._demo._options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DURATION,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_WAIT,
    DEFAULT_RATE,
)
from ._loop import LOOP_NAMES, LoopName, loop_factory, run_main

MAX_RATE = 1_000_000.0
"""Records a second: far beyond what one event loop serves, so only typos are refused."""
MAX_WAIT = 10.0
DAY = 86_400.0

Command = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
"""What a subcommand runs: its parsed arguments in, an exit code out."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command that ``argv`` names (``sys.argv[1:]`` by default); return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if (check := getattr(args, "check", None)) is not None:
        check(args)  # a command's own checks, after parsing
    return _run(args.command, args)


def _run(command: Command, args: argparse.Namespace) -> int:
    return run_main(command, args, loop=args.loop)


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
        help="classify handwritten digits streamed by a local HTTP server, in batches",
        description=(
            "Run the main job end to end against an embedded server: fetch digit images "
            "over HTTP, preprocess them on processes, classify them in dynamic batches on "
            "processes, and report throughput, latency, batch sizes and accuracy. "
            "Needs pipework[demo] (scikit-learn)."
        ),
    )
    demo.add_argument(
        "--rate",
        type=_rate,
        default=DEFAULT_RATE,
        metavar="PER_SECOND",
        help=f"records the server serves a second, or 'max' to serve each as soon as "
        f"asked, so the pipeline sets the pace (default {DEFAULT_RATE:g})",
    )
    length = demo.add_mutually_exclusive_group()
    length.add_argument("--count", type=_positive, default=None, help="records to fetch")
    length.add_argument(
        "--duration",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=f"seconds of records to fetch (default {DEFAULT_DURATION:g})",
    )
    demo.add_argument(
        "--workers",
        type=_positive,
        default=None,
        help="processes per stage (default: one per core)",
    )
    demo.add_argument(
        "--max-batch",
        type=_positive,
        default=None,
        help=f"most records per model call (default {DEFAULT_MAX_BATCH})",
    )
    demo.add_argument(
        "--max-wait",
        type=_wait,
        default=None,
        metavar="SECONDS",
        help="how long a batch that is not full may wait for more records "
        f"(default {DEFAULT_MAX_WAIT:g})",
    )
    demo.add_argument(
        "--no-batch",
        action="store_true",
        help="classify one record per model call, with a plain process map",
    )
    demo.add_argument(
        "--concurrency",
        type=_positive,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    demo.add_argument("--no-progress", action="store_true", help="no live progress line")
    _add_loop_option(demo)
    demo.set_defaults(command=_demo, check=partial(_check_demo, demo))


def _check_demo(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what parses but makes no sense, and say what to install if the demo cannot run."""
    if args.no_batch and (args.max_batch is not None or args.max_wait is not None):
        parser.error("argument --no-batch: not allowed with --max-batch or --max-wait")
    if importlib.util.find_spec("sklearn") is None:
        parser.error("the demo needs scikit-learn: pip install 'pipework[demo]'")


async def _demo(args: argparse.Namespace) -> int:
    from ._demo._job import run_demo  # noqa: PLC0415 - numpy and sklearn load only for the demo

    options = DemoOptions(
        count=args.count,
        rate=args.rate,
        duration=DEFAULT_DURATION if args.duration is None else args.duration,
        workers=args.workers,
        max_batch=args.max_batch or DEFAULT_MAX_BATCH,
        max_wait=DEFAULT_MAX_WAIT if args.max_wait is None else args.max_wait,
        batch=not args.no_batch,
        concurrency=args.concurrency,
        progress=not args.no_progress,
    )
    return await run_demo(options)


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


def _rate(text: str) -> float | None:
    """Parse ``--rate``: a positive number of records a second, or ``max`` (None: no pace)."""
    if text == "max":
        return None
    value = _number(text)
    if not 0 < value <= MAX_RATE:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_RATE:g} records a second, or 'max', not {text!r}"
        )
    return value


def _seconds(text: str) -> float:
    """Parse a duration: more than 0 seconds, and at most a day."""
    value = _number(text)
    if not 0 < value <= DAY:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 seconds and at most a day, not {text!r}"
        )
    return value


def _wait(text: str) -> float:
    """Parse ``--max-wait``: 0 (send what has arrived) up to 10 seconds."""
    value = _number(text)
    if not 0 <= value <= MAX_WAIT:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_WAIT:g} seconds, not {text!r}")
    return value


def _number(text: str) -> float:
    """Parse a number; text that is none becomes NaN, which the range checks after this refuse."""
    try:
        return float(text)
    except ValueError:
        return math.nan


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
