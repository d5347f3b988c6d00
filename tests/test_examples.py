"""Every script in examples/ runs to the end and prints what it promises.

Each example runs in its own interpreter, as a user would run it, so that
the ``__main__`` guard, worker start-up and clean exit are all exercised.
A new example is picked up automatically; the ones the docs link to must
exist.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT = 60  # seconds per example; each finishes in a few on two cores

# What each documented example must print. A pattern per line of evidence
# that it did its job, not merely that it started.
EXPECTED: dict[str, list[str]] = {
    "pool_map.py": [
        r"collatz: 9999 results in input order",
        r"longest chain below 10000 starts at 6171 \(261 steps\)",
        re.escape("lambda in processes: [0, 1, 8, 27, 64, 125, 216, 343]"),
        r"threads give the same results: True",
        (
            r"ZeroDivisionError raised as itself: pipework: in stage #1 '<lambda>' "
            r"\(process map\), on item 3: 0"
        ),
    ],
    "fetch_then_compute.py": [
        r"event loop: (asyncio|uvloop)\n",
        r"scored 200 records",
        r"#1 fetch\s+async map\s+200\s+200\s+0",
        r"#2 score\s+process map\s+200\s+200\s+0",
        r"#3 keep\s+sink\s+200\s+200\s+0",
    ],
    "on_dask.py": [
        r"scored 200 records on 2 Dask workers",
        # The same scores as fetch_then_compute.py, computed on the cluster.
        re.escape("primes in records 0-4: [18, 18, 15, 8, 19]"),
        r"total primes: 3066",
        r"#2 score\s+dask map\s+200\s+200\s+0",
    ],
    "http_fetch.py": [
        r"fetched 200 records; sum of values 599",
        # aiohttp resends a GET once on a dropped connection; versions differ in when.
        r"the server answered: 200 x 200, 4 x 429, 20 x 503, [12] x reset",
        r"the fetcher sent 22[56] requests, 2[56] of them retries",
        r"its session was closed by the run: True",
        r"#2 fetch\s+async map\s+200\s+200\s+0",
        r"streamed 3 files: 4,500,010 bytes in \d+ chunks of at most 1 MiB",
        (
            r"the run stopped with HTTPError: GET http://127\.0\.0\.1:\d+/broken failed after "
            r"3 attempts: status 503 Service Unavailable"
        ),
        r"note: pipework: in stage #1 'fetch' \(async map\), on item 2: '/broken'",
    ],
    "model_per_worker.py": [
        r"worker pid \d+: \d+ batches, model loads \['[0-9a-f]{8}'\]",
        r"setup ran once per worker: (\d) loads for \1 worker processes",
        r"accuracy on 4000 points: (9\d|100)\.\d%",
        r"#2 predict\s+process map\s+80\s+80\s+0",
    ],
    "thread_or_process.py": [
        r"cpu \(count primes\)\s+\d+\.\d\ds\s+\d+\.\d\ds",
        r"blocking \(sleep\)\s+\d+\.\d\ds\s+\d+\.\d\ds",
        r"same results both ways: True",
    ],
    "resilient_pipeline.py": [
        r"40 records in: 37 results, 3 failures",
        r"every record is a result or a failure: True",
        r"tries made again after a ConnectionError: 6",
        r"#2 analyse\s+process map\s+40\s+38\s+2",
        (
            r"item 23 in stage #2 'analyse' \(process map\), after 1 try:\n\s+ItemTimeoutError: "
            r"an item ran longer than its timeout of 1\.0 s; its worker process \d+ was killed"
        ),
        r"dead letters: items \[11, 23\]",
    ],
    "files_pipeline.py": [
        r"summarised 59 of 60 files into summary\.csv",
        r"data-000\.csv,500,\d+\.\d{3},\d+\.\d{3}",
        r"1 failed:\n  data-017\.csv: could not convert string to float: 'n/a'",
        r"the run stopped with ValueError: could not convert string to float: 'n/a'",
        (
            r"note: pipework: in stage #2 'summarise' \(process map\), on item 17: "
            r"\('data-017\.csv', "
        ),
    ],
    "fetch_two_features.py": [
        r"scored 200 records; first five scores: \[85, 115, 105, 105, 105\]",
        r"the server answered 200 requests for 200 records",
        r"each record fetched once: True",
        r"zip left out 0 records",
        r"#1 fetch\s+async map\s+200\s+200\s+0",
        r"#2 cpu_feature\s+process map\s+200\s+200\s+0",
        r"#3 io_feature\s+thread map\s+200\s+200\s+0",
        r"#4 zip\s+zip\s+400\s+200\s+0",
        r"#6 keep\s+sink\s+200\s+200\s+0",
    ],
    "prediction_service.py": [
        r"serving on http://127\.0\.0\.1:\d+/predict, at most 16 requests in flight",
        r"burst of 200 concurrent requests: \d+ answered at once; [1-9]\d* told 503 \(busy\)",
        r"200 of 200 answers match their own request's prediction",
        r"bad JSON: 400 ",
        r"3 features: 422 \{\"error\": \"expected 4 features, got 3\"\}",
        r"4 features: 200 \{\"y\": ",
        # Scraped after 200 + 1 answers: Prometheus sees what the service counted.
        (
            r'/metrics: 200, pipework_stage_items_out_total\{kind="process map",'
            r'service="predict",stage="#1 predict"\} 201\.0'
        ),
        r"#1 predict\s+process map\s+202\s+201\s+1",
    ],
}

# Command-line arguments for examples that do something else without them
# (a server runs until it is stopped; its self test ends).
ARGS: dict[str, list[str]] = {"prediction_service.py": ["--selftest"]}


def example_names() -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob("*.py"))


def test_the_documented_examples_exist() -> None:
    missing = set(EXPECTED) - set(example_names())
    assert not missing, f"examples the docs rely on are missing: {sorted(missing)}"


@pytest.mark.parametrize("name", example_names())
def test_example_runs_and_prints_its_result(name: str) -> None:
    script = EXAMPLES / name
    source = script.read_text()
    assert source.lstrip().startswith('"""'), f"{name} needs a module docstring"
    assert 'if __name__ == "__main__":' in source, f"{name} needs a __main__ guard"

    done = subprocess.run(
        [sys.executable, str(script), *ARGS.get(name, [])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr}"
    assert done.stdout.strip(), f"{name} printed nothing"
    for pattern in EXPECTED.get(name, []):
        assert re.search(pattern, done.stdout), (
            f"{name}: no match for {pattern!r} in its output:\n{done.stdout}"
        )
    assert "Traceback" not in done.stderr, f"{name} printed a traceback:\n{done.stderr}"
