"""Must type-check under ``mypy --strict``: the types the builder infers.

Nothing here runs; ``tests/test_typing.py`` checks it with mypy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import assert_type

from prometheus_client.metrics_core import Metric

import pipework
from pipework import Pipeline, Report, Stream, http


def save_int(x: int) -> None:
    pass


def show(x: int) -> str:
    return str(x)


async def fetch(x: int) -> bytes:
    return bytes(x)


def load_table() -> dict[int, float]:
    return {}


def lookup(table: dict[int, float], x: int) -> float:
    return table.get(x, 0.0)


async def lookup_async(table: dict[int, float], x: int) -> float:
    return table.get(x, 0.0)


def is_even(x: int) -> bool:
    return x % 2 == 0


async def is_even_async(x: int) -> bool:
    return x % 2 == 0


async def numbers() -> AsyncIterator[int]:
    yield 1


async def pages(x: int) -> AsyncIterator[str]:
    yield str(x)


def save(x: str) -> None:
    pass


async def builder_types() -> None:
    ints = Pipeline(range(3))
    assert_type(ints, Pipeline[int])
    assert_type(Pipeline(numbers()), Pipeline[int])
    assert_type(Pipeline(["a", "b"]), Pipeline[str])

    assert_type(ints.map(str), Pipeline[str])
    assert_type(ints.map(show), Pipeline[str])
    assert_type(ints.map(show, on="process", workers=2, chunksize=8), Pipeline[str])
    assert_type(ints.map(show, on="thread", max_in_flight=64), Pipeline[str])
    cluster: object = None  # a distributed.Client: pipework.dask takes it untyped
    assert_type(ints.map(show, on=pipework.dask(cluster)), Pipeline[str])
    assert_type(ints.filter(bool, on=pipework.dask(cluster), workers=4), Pipeline[int])
    on_cluster: pipework.Backend = pipework.dask(cluster)
    assert_type(ints.map(lookup, setup=load_table, on=on_cluster), Pipeline[float])
    assert_type(ints.map(lambda x: x * 1.5), Pipeline[float])
    assert_type(ints.map(fetch), Pipeline[bytes])
    assert_type(ints.map(fetch, concurrency=4, ordered=False), Pipeline[bytes])
    assert_type(ints.map(lookup, setup=load_table), Pipeline[float])
    assert_type(ints.map(lookup, setup=load_table, on="thread"), Pipeline[float])
    assert_type(ints.map(lookup_async, setup=load_table), Pipeline[float])

    assert_type(ints.filter(is_even), Pipeline[int])
    assert_type(ints.filter(is_even_async), Pipeline[int])
    assert_type(ints.filter(lambda x: x > 1, on="thread"), Pipeline[int])
    assert_type(ints.map(show).filter(str.isdigit), Pipeline[str])

    assert_type(ints.flat_map(lambda x: [str(x)]), Pipeline[str])
    assert_type(ints.flat_map(range), Pipeline[int])
    assert_type(ints.flat_map(pages, concurrency=4), Pipeline[str])

    assert_type(ints.batch(2), Pipeline[list[int]])
    assert_type(ints.batch(2, max_wait=0.1).map(sum), Pipeline[int])
    assert_type(ints.map(show).sink(save), pipework.SealedPipeline)


async def graph_types() -> None:
    ints = Pipeline(range(3))
    strs = ints.map(show)
    assert_type(pipework.zip(ints, strs), Pipeline[tuple[int, str]])
    assert_type(pipework.zip(ints, strs, ints.map(float)), Pipeline[tuple[int, str, float]])
    assert_type(pipework.zip(ints, strs).map(lambda pair: pair[1]), Pipeline[str])
    assert_type(pipework.merge(ints, strs), Pipeline[int | str])
    assert_type(pipework.merge(ints, ints, ints), Pipeline[int])
    assert_type(ints.partition(2, key=lambda x: x % 2), tuple[Pipeline[int], ...])
    assert_type(await pipework.run_all(ints.sink(save_int), strs), Report)
    assert_type(await ints.sink(save_int).run(), Report)


async def running_types() -> None:
    ints = Pipeline(range(3))
    assert_type(await ints.run(), Report)
    assert_type(ints.stream(), Stream[int])
    assert_type(ints.map(show).stream(), Stream[str])
    async with ints.map(show).stream() as outputs:
        assert_type(outputs, Stream[str])
        async for out in outputs:
            assert_type(out, str)
    async for value in ints.batch(3):
        assert_type(value, list[int])
    report = await ints.run()
    assert_type(report["source"].items_out, int)
    assert_type(report.items_per_second, float)


async def map_types() -> None:
    assert_type(await pipework.map(show, range(3)), list[str])
    assert_type(await pipework.map(show, range(3), on="thread", workers=2), list[str])
    assert_type(await pipework.map(fetch, [1, 2], concurrency=8), list[bytes])
    assert_type(await pipework.map(lookup, range(3), setup=load_table), list[float])
    assert_type(await pipework.map(lambda x: x * 2, [1.0, 2.0]), list[float])


async def http_types(urls: list[str]) -> None:
    assert_type(http.fetch(), http.Fetcher[bytes])
    assert_type(http.fetch(response="text", rate=5.0), http.Fetcher[str])
    assert_type(http.fetch(response="stream", chunk_size=1024), http.Fetcher[http.StreamedResponse])
    pages = Pipeline(urls).map(http.fetch(response="text"), concurrency=32)
    assert_type(pages, Pipeline[str])
    requests = [http.Request(url, method="POST", json={"a": 1}) for url in urls]
    assert_type(Pipeline(requests).map(http.fetch()), Pipeline[bytes])
    assert_type(http.source(urls), Pipeline[bytes])
    assert_type(http.source(urls, http.fetch(response="text")), Pipeline[str])
    async with http.fetch(retry=http.Retry(attempts=2)) as fetch:
        assert_type(await fetch(urls[0]), bytes)
    async for response in Pipeline(urls).map(http.fetch(response="stream")):
        async for chunk in response:
            assert_type(chunk, bytes)


async def count_to(n: int, label: str) -> list[str]:
    return [label] * n


async def nothing() -> None:
    pass


def run_types() -> None:
    assert_type(pipework.run_main(count_to, 3, "x"), list[str])
    assert_type(pipework.run_main(nothing), None)
    assert_type(pipework.run_main(count_to, 3, "x", loop="asyncio", debug=True), list[str])
    assert_type(pipework.run_main(nothing, loop=asyncio.new_event_loop), None)


def predict_many(images: list[bytes]) -> list[int]:
    return [len(image) for image in images]


async def embed_many(texts: list[str]) -> list[float]:
    return [float(len(text)) for text in texts]


def batch_types() -> None:
    assert_type(Pipeline([b"a"]).map_batches(predict_many, max_size=8, on="process"), Pipeline[int])
    assert_type(Pipeline(["a"]).map_batches(embed_many, max_size=8, max_wait=0.01), Pipeline[float])
    assert_type(
        Pipeline(["a"]).map(len, retry=pipework.Retry(3), errors="skip", timeout=1.0),
        Pipeline[int],
    )


def square_one(x: int) -> int:
    return x * x


def split_words(text: str) -> list[str]:
    return text.split()


async def service_types() -> None:
    # The item type given to service() flows through the stages to submit's result.
    squares = Pipeline.service(int).map(square_one, on="process").map(show)
    assert_type(squares, Pipeline[str])
    async with squares.open(max_in_flight=8) as service:
        assert_type(service, pipework.Service[str])
        assert_type(await service.submit(3), str)
        assert_type(service.submit_nowait(3), asyncio.Future[str])
    # A flat_map's items come back as the list of what it made of each item.
    words = Pipeline.service(str).flat_map(split_words)
    async with words.open(results="list") as service:
        assert_type(service, pipework.Service[list[str]])
        assert_type(await service.submit("a b"), list[str])


def on_snapshot(snapshot: pipework.Snapshot) -> None:
    assert_type(snapshot.bottleneck, pipework.Bottleneck | None)


async def seeing_types() -> None:
    assert_type(await Pipeline(range(3)).map(show).run(progress=True), Report)
    assert_type(await Pipeline(range(3)).map(show).run(progress=on_snapshot), Report)
    assert_type(await pipework.map(show, range(3), progress=True), list[str])
    async with Pipeline(range(3)).map(show).stream(progress=on_snapshot) as outputs:
        assert_type(outputs.snapshot(), pipework.Snapshot)
    assert_type(pipework.prometheus_collector(outputs.snapshot).collect(), Iterator[Metric])
