"""What runs wherever a chunk runs: in a thread, in a worker process, later on a cluster.

The trampoline (`_trampoline.run_chunk`) applies a stage's operation (`_ops`) to a
chunk; `_serial` and `_buffers` carry items, results and large buffers across
a process boundary; `_tracker` tells the parent where a worker is within its
chunk. These modules import nothing of the event loop's, so a worker process
loads them fast, and nothing here imports the parent's side.
"""
