"""What a pipeline is, with no asyncio in it: stage options, frozen specs, and the graph.

Everything here runs when a pipeline is built, so a setting that cannot work
fails at the line that wrote it. `_run` and the stages read it; nothing here
reads them.
"""
