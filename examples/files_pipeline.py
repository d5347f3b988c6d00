"""Transform many files in a streaming pipeline: read on threads, compute on processes.

The script writes 60 small CSV files into a temporary directory, one of them
broken, then runs::

    paths -> read (threads: blocking file I/O)
          -> summarise (processes: parsing and arithmetic)
          -> write (a sink: one line per file into summary.csv)

Memory stays bounded however many files there are: ``buffer=`` caps how many
file contents wait between stages, so files are read only as fast as they
are summarised, never all at once.

Failures, two ways:

1. Reported per file. The stage has ``errors="skip"``: a file that fails is
   dropped, the run goes on, and the report lists each failed file, with its
   index, a repr of the item and the exception (``report.failures``).
2. Raised. Without that wrapper the first failure stops the run: the
   exception comes back as itself, with a note naming the stage, the item's
   position in the source, and the item itself, here the broken file.

Run it from the repository root::

    python examples/files_pipeline.py
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
from pathlib import Path
from typing import IO

from pipework import Pipeline

FILES = 60
BROKEN = 17  # the file with a value that does not parse


def make_files(directory: Path) -> list[Path]:
    """Write the input files; file number ``BROKEN`` has a bad value on its last line."""
    paths = []
    for number in range(FILES):
        rng = random.Random(number)
        lines = ["reading"] + [f"{rng.uniform(0, 100):.3f}" for _ in range(500)]
        if number == BROKEN:
            lines.append("n/a")
        path = directory / f"data-{number:03}.csv"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def read(path: Path) -> tuple[str, str]:
    """Read one file: blocking I/O, so it runs on threads."""
    return path.name, path.read_text()


def summarise(named_text: tuple[str, str]) -> tuple[str, int, float, float]:
    """Parse one file's numbers and summarise them: CPU work, so it runs in processes."""
    name, text = named_text
    values = [float(line) for line in text.splitlines()[1:]]
    return name, len(values), statistics.fmean(values), statistics.pstdev(values)


async def per_file_failures(paths: list[Path], out: IO[str]) -> list[str]:
    """Way 1: summarise every file that parses, and collect the failures from the report."""

    def write(result: tuple[str, int, float, float]) -> None:
        name, count, mean, spread = result
        out.write(f"{name},{count},{mean:.3f},{spread:.3f}\n")

    report = await (
        Pipeline(paths, name="paths")
        .map(read, on="thread", workers=4, buffer=8)
        .map(summarise, on="process", buffer=8, errors="skip")
        .sink(write)
        .run()
    )
    print(report)
    # A failure's index is the item's position in the source: here, which path.
    return [f"{paths[failure.index].name}: {failure.error}" for failure in report.failures]


async def first_failure_stops(paths: list[Path]) -> None:
    """Way 2: let the error raise; it stops the run and names the file."""
    try:
        await Pipeline(paths).map(read, on="thread").map(summarise, on="process").run()
    except ValueError as error:
        print(f"the run stopped with ValueError: {error}")
        for note in error.__notes__:
            print(f"  note: {note}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = make_files(directory)
        summary = directory / "summary.csv"
        with summary.open("w") as out:
            out.write("file,count,mean,stdev\n")
            failures = await per_file_failures(paths, out)
        lines = summary.read_text().splitlines()
        print(f"summarised {len(lines) - 1} of {len(paths)} files into summary.csv; first rows:")
        for line in lines[:3]:
            print(f"  {line}")
        print(f"{len(failures)} failed:")
        for failure in failures:
            print(f"  {failure}")

        await first_failure_stops(paths)


if __name__ == "__main__":
    asyncio.run(main())
