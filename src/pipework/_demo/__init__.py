"""The main job that ``python -m pipework demo`` runs: digits over HTTP, classified in batches.

It is the smallest honest picture of what pipework is for. An embedded
aiohttp server streams handwritten digits (scikit-learn's bundled set) at a
steady rate; the pipeline fetches them (async I/O, many requests in
flight), preprocesses each on a process pool (decode, normalise, deskew),
classifies them in dynamic batches on another (`Pipeline.map_batches`, a
model trained once per worker by ``setup=``), and measures at its sink how
long each record took from the moment it was due, how large the batches
were, and how often the model was right.

The modules: `_options` (settings, standard library only, for the command
line), `_digits` (the data, the preprocessing and the model, which run in
the workers), `_server` (the paced server), `_stats` (the sink and the
figures), `_progress` (the live line) and `_job` (the pipeline and the run).
"""

from ._options import DemoOptions as DemoOptions

__all__ = ["DemoOptions"]
