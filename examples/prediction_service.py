"""A JSON prediction endpoint on aiohttp, served by a pipeline in service mode.

``POST /predict`` with ``{"x": [four numbers]}`` answers ``{"y": prediction}``.
The model runs in worker processes, loaded once per worker with ``setup=``;
the web handlers submit to one pipeline that lives as long as the app:

- each request gets its own result, whatever order the workers finish in;
- at most ``MAX_IN_FLIGHT`` requests are in the service at once; past that
  the endpoint answers 503 at once (``submit_nowait`` raises
  `ServiceBusyError`) rather than queue without bound;
- a request the model rejects fails alone (422); bad JSON is a 400;
- on shutdown the service finishes the requests in flight, then stops its
  workers, and prints its report;
- ``GET /metrics`` serves the service's live figures to Prometheus (counts,
  rates, utilisation, input fill, latency per stage), read at each scrape
  (needs ``pipework[prometheus]``).

The "model" is a fixed linear model. Its ``predict`` sleeps 20 ms to stand in
for the cost of a real one, so that a burst of requests fills the service.

Run the server, then ``curl -d '{"x": [1, 2, 3, 4]}' localhost:8080/predict``::

    python examples/prediction_service.py --port 8080

Or let it test itself: start on a free port of 127.0.0.1, fire a burst of
concurrent requests, retry the ones answered 503, and check every answer::

    python examples/prediction_service.py --selftest
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pipework import Pipeline, Service, ServiceBusyError, prometheus_collector

FEATURES = 4
MAX_IN_FLIGHT = 16
BURST = 200


@dataclass(frozen=True)
class LinearModel:
    weights: tuple[float, ...]
    bias: float

    def predict(self, x: list[float]) -> float:
        return sum(w * v for w, v in zip(self.weights, x, strict=True)) + self.bias


def load_model() -> LinearModel:
    """Runs once in each worker process; a real one would read weights from disk."""
    rng = random.Random(42)
    return LinearModel(tuple(rng.uniform(-1, 1) for _ in range(FEATURES)), bias=0.5)


def predict(model: LinearModel, x: list[float]) -> float:
    if len(x) != FEATURES:
        raise ValueError(f"expected {FEATURES} features, got {len(x)}")
    time.sleep(0.02)  # the cost of a real model
    return model.predict(x)


PIPELINE = Pipeline.service(list).map(
    predict, on="process", workers=2, setup=load_model, ordered=False
)
SERVICE = web.AppKey("service", Service[float])
METRICS = web.AppKey("metrics", CollectorRegistry)


async def handle_predict(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return web.json_response({"error": "the body is not valid JSON"}, status=400)
    x = body.get("x") if isinstance(body, dict) else None
    if not isinstance(x, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in x
    ):
        return web.json_response({"error": 'expected {"x": [numbers]}'}, status=400)
    try:
        y = await request.app[SERVICE].submit_nowait(x)
    except ServiceBusyError:
        return web.json_response(
            {"error": "busy, try again"}, status=503, headers={"Retry-After": "1"}
        )
    except ValueError as exc:  # the model refused this input; only this request fails
        return web.json_response({"error": str(exc)}, status=422)
    return web.json_response({"y": y})


async def handle_metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def run_service(app: web.Application) -> AsyncIterator[None]:
    """Open the service with the app, and close it (draining) when the app shuts down."""
    async with PIPELINE.open(max_in_flight=MAX_IN_FLIGHT) as service:
        app[SERVICE] = service
        registry = CollectorRegistry()
        registry.register(prometheus_collector(service.snapshot, labels={"service": "predict"}))
        app[METRICS] = registry
        yield
    print(service.report)


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/predict", handle_predict)
    app.router.add_get("/metrics", handle_metrics)
    app.cleanup_ctx.append(run_service)
    return app


# The self test ---------------------------------------------------------------


async def post(session: aiohttp.ClientSession, url: str, data: str) -> tuple[int, dict]:
    async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, await r.json()


async def ask_until_answered(
    session: aiohttp.ClientSession, url: str, x: list[float]
) -> tuple[float, int]:
    """Post ``x``; on a 503, back off and ask again. Return the answer and the 503s."""
    busy = 0
    while True:
        status, body = await post(session, url, json.dumps({"x": x}))
        if status == 200:
            return body["y"], busy
        if status != 503:
            raise SystemExit(f"unexpected answer {status}: {body}")
        busy += 1
        await asyncio.sleep(random.uniform(0, 0.05 * 2 ** min(busy, 5)))


async def selftest() -> None:
    runner = web.AppRunner(make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}/predict"
    print(f"serving on {url}, at most {MAX_IN_FLIGHT} requests in flight")
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await burst(session, url)
            await bad_requests(session, url)
            await metrics(session, f"http://{host}:{port}/metrics")
    finally:
        await runner.cleanup()  # closes the service: it drains, then prints its report


async def burst(session: aiohttp.ClientSession, url: str) -> None:
    rng = random.Random(7)
    inputs = [[round(rng.uniform(-10, 10), 3) for _ in range(FEATURES)] for _ in range(BURST)]
    answers = await asyncio.gather(*(ask_until_answered(session, url, x) for x in inputs))
    first_try = sum(busy == 0 for _, busy in answers)
    busy = sum(b for _, b in answers)
    print(f"burst of {BURST} concurrent requests: {first_try} answered at once; ", end="")
    print(f"{BURST - first_try} told 503 (busy), {busy} times in all, then answered on a retry")
    model = load_model()
    correct = sum(
        math.isclose(y, model.predict(x), rel_tol=1e-12, abs_tol=1e-12)
        for (y, _), x in zip(answers, inputs, strict=True)
    )
    print(f"{correct} of {BURST} answers match their own request's prediction")


async def bad_requests(session: aiohttp.ClientSession, url: str) -> None:
    for what, data in [
        ("bad JSON", "{not json"),
        ('no "x"', json.dumps({"features": [1, 2, 3, 4]})),
        ("3 features", json.dumps({"x": [1, 2, 3]})),
        ("4 features", json.dumps({"x": [1, 0, 0, 0]})),
    ]:
        status, body = await post(session, url, data)
        print(f"{what}: {status} {json.dumps(body)}")


async def metrics(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url) as response:
        text = await response.text()
    [served] = [
        line
        for line in text.splitlines()
        if line.startswith("pipework_stage_items_out_total") and 'kind="process map"' in line
    ]
    print(f"/metrics: {response.status}, {served}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--selftest", action="store_true", help="test against itself, then exit")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    if args.selftest:
        asyncio.run(selftest())
    else:
        web.run_app(make_app(), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
