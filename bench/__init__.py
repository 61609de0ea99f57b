"""Benchmarks comparing our update module and generator with the original system.

Run them with `bench/run_all`; each `*_bench.py` is also a script of its own.
These are not tests: pytest never collects them.
"""
