"""Cannot even be imported."""

raise ImportError("a dependency is missing")
