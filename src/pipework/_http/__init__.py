"""The parts of `pipework.http`: settings, retries, rate limits, the fetcher, streamed bodies.

Everything public is re-exported by ``pipework/http.py``; these modules are
implementation details.
"""
