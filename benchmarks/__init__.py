"""Throughput and memory benchmarks for populator (issue 5). Run `python benchmarks/run.py`."""
