"""The fetch-then-compute pipeline with its process stage on a Dask cluster.

The same pipeline as ``fetch_then_compute.py``, with one argument changed:
``on=pipework.dask(client)`` instead of ``on="process"``. The fetches and the
sink stay on this event loop; the scoring runs on the cluster's workers::

    record ids -> fetch (async, on this event loop)
               -> score (on the Dask cluster: 2 worker processes)
               -> keep  (a sink, in this process)

For the example, the cluster is a ``LocalCluster`` that the script starts; a
real one would be started apart (``dask scheduler``, ``dask worker``) and only
connected to. The workers import ``score`` from ``fetch_then_compute``, as a
cluster's workers import a user's modules: here they find it because they
start from this directory. It needs the dask extra
(``pip install 'pipework[dask]'``).

Run it from the repository root::

    python examples/on_dask.py
"""

from __future__ import annotations

import aiohttp
import distributed
from fetch_then_compute import RECORDS, record_server, score

import pipework
from pipework import Pipeline


async def main() -> None:
    scores: dict[int, int] = {}

    def keep(result: tuple[int, int]) -> None:
        record_id, primes = result
        scores[record_id] = primes

    async with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, asynchronous=True
        ) as cluster,
        distributed.Client(cluster, asynchronous=True) as client,
        record_server() as base_url,
        aiohttp.ClientSession(base_url) as session,
    ):

        async def fetch(record_id: int) -> dict[str, object]:
            async with session.get(f"/records/{record_id}") as response:
                response.raise_for_status()
                record: dict[str, object] = await response.json()
                return record

        report = await (
            Pipeline(range(RECORDS), name="ids")
            .map(fetch, concurrency=16)
            .map(score, on=pipework.dask(client))
            .sink(keep)
            .run()
        )
        workers = len(await client.nthreads())

    print(f"scored {len(scores)} records on {workers} Dask workers")
    print(f"primes in records 0-4: {[scores[i] for i in range(5)]}")
    print(f"total primes: {sum(scores.values())}")
    print(report)


if __name__ == "__main__":
    pipework.run_main(main)
