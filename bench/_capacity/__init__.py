"""What the capacity and cost benchmarks share: how AWS meters a request (`units`),
what a unit costs (`pricing`), the recorder that meters the data layer's calls
(`meter`), and the generator of docs/capacity.md (`doc`).

The package's name starts with an underscore so that `python -m bench` does not
take it for a benchmark.
"""
