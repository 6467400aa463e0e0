"""Benchmarks of the product that print ratios against a baseline measured in the same run.

They are never part of pass/fail: run them with `make bench` (all) or
`python -m bench NAME` (one). `capacity/` is the capacity and cost model, with its own
tests, run by `make capacity-doc`.
"""
