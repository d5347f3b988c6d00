"""Must FAIL type-checking: each line marked ``# E:`` states the error mypy must report there.

A mark reads ``# E: [code] text``: mypy must report an error with that code
whose message contains the text. ``tests/test_typing.py`` checks every mark,
and that no unmarked line has an error, so a fail file that stops failing is
caught.
"""

from __future__ import annotations

import pipework
from pipework import Pipeline, Report, http


def takes_str(s: str) -> str:
    return s


def takes_int(x: int) -> int:
    return x


def load() -> bytes:
    return b""


def ints() -> Pipeline[int]:
    return Pipeline(range(3))


async def mistakes() -> None:
    ints().map(len)  # E: [arg-type] incompatible type "Callable[[Sized], int]"
    ints().map(takes_str)  # E: [arg-type] incompatible type "Callable[[str], str]"
    ints().filter(takes_str)  # E: [arg-type] "filter" of "Pipeline" has incompatible type
    ints().flat_map(takes_int)  # E: [arg-type] "flat_map" of "Pipeline" has incompatible type
    ints().batch(2).map(takes_int)  # E: [arg-type] expected "Callable[[list[int]]
    ints().map(takes_str, setup=load)  # E: [arg-type] "map" of "Pipeline" has incompatible type
    ints().sink(takes_str)  # E: [arg-type] "sink" of "Pipeline" has incompatible type
    strings: Pipeline[str] = ints().map(str)
    wrong: Pipeline[int] = strings  # E: [assignment] expression has type "Pipeline[str]"
    count: int = await ints().run()  # E: [assignment] expression has type "Report"
    report: Report = await ints().run()
    report.stages = ()  # E: [misc] Property "stages" defined in "Report" is read-only
    await pipework.map(takes_str, range(3))  # E: [arg-type] "map" has incompatible type


async def option_mistakes() -> None:
    # The options are declared once (pipework._model._options) and still checked.
    ints().map(takes_int, chunksize="8")  # E: [call-overload] No overload variant of "map"
    ints().map(takes_int, buffer="8")  # E: [call-overload] No overload variant of "map"
    ints().map(takes_int, retries=3)  # E: [call-overload] No overload variant of "map"
    ints().filter(takes_int, errors="ignore")  # E: [call-overload] No overload variant
    ints().map_batches(lambda xs: xs, max_size=4, chunksize=2)  # E: [call-overload]


async def http_mistakes() -> None:
    fetch = http.fetch()
    ints().map(fetch)  # E: [arg-type] incompatible type "Fetcher[bytes]"
    http.fetch(response="xml")  # E: [call-overload] No overload variant of "fetch" matches
    http.fetch(retries=3)  # E: [call-overload] Unexpected keyword argument "retries"
    urls = Pipeline(["u"])
    text: Pipeline[bytes] = urls.map(http.fetch(response="text"))  # E: [arg-type] "Fetcher[str]"


async def count_to(n: int, label: str) -> list[str]:
    return [label] * n


def run_mistakes() -> None:
    pipework.run_main(count_to, "3", "x")  # E: [arg-type] expected "Callable[[str, str]
    pipework.run_main(count_to, 3)  # E: [arg-type] expected "Callable[[int], Coroutine
    pipework.run_main(count_to(3, "x"))  # E: [arg-type] incompatible type "Coroutine[
    pipework.run_main(count_to, 3, "x", loop="trio")  # E: [arg-type] Argument "loop" to "run_main"
    n: int = pipework.run_main(count_to, 3, "x")  # E: [assignment] expression has type "list[str]"


def predict_many(images: list[bytes]) -> list[int]:
    return [len(image) for image in images]


def batch_mistakes() -> None:
    Pipeline(["text"]).map_batches(predict_many, max_size=8)  # E: [arg-type]
    Pipeline([b"a"]).map_batches(predict_many)  # E: [call-overload]


def graph_mistakes() -> None:
    ints = Pipeline(range(3))
    ints.sink(print).map(str)  # E: [attr-defined] "SealedPipeline" has no attribute "map"
    pairs = pipework.zip(ints, ints.map(str))
    same: Pipeline[tuple[int, int]] = pairs  # E: [assignment] "Pipeline[tuple[int, str]]"
    merged = pipework.merge(ints, ints.map(str))
    one: Pipeline[int] = merged  # E: [assignment] "Pipeline[int | str]"
    pipework.zip(ints, ints.sink(print))  # E: [call-overload]


def takes_report(report: Report) -> None:
    pass


async def progress_mistakes() -> None:
    await Pipeline(range(3)).run(progress="yes")  # E: [arg-type] "progress"
    await Pipeline(range(3)).run(progress=takes_report)  # E: [arg-type] "progress"
