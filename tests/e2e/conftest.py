"""The local stack for end-to-end tests: one process per test session (per xdist
worker), shared by every test marked `xdist_group("e2e")` so that `--dist loadgroup`
sends them to the same worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.local_stack import LocalStackProcess


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStackProcess]:
    """`agentfiles serve` as a subprocess on a free port, as `make run` starts it."""
    stack = LocalStackProcess.start()
    yield stack
    code = stack.stop()
    assert code == 0, f"the local stack did not stop cleanly (exit {code}):\n{stack.output()}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing end-to-end test shows what the stack logged."""
    report = yield
    stack = getattr(item, "funcargs", {}).get("local_stack")
    if report.failed and isinstance(stack, LocalStackProcess):
        report.sections.append(("local stack output (tail)", stack.output(8000)))
    return report
