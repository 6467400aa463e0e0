"""What the tests and the benchmarks share: AWS in process with the system's resources
(`aws`), call counting (`calls`), fresh-interpreter import probes (`imports`) and real
bytes of each accepted kind (`samples`)."""
