"""Benchmark suites run by ``scripts/bench.py SUITE``. Scripts, never timed tests."""
