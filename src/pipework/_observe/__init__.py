"""Seeing a run: per-stage counters, latency histograms, and the report built from them."""
