"""Benchmarks of pipework against the standard library and its peers: ``make bench``.

Modules here import no peer (joblib, mpire, pypeln, aiomultiprocess) and no
numpy or matplotlib at import time, so the test suite can import them in an
environment that has none of those.
"""
