"""The function host runs a repository function as Lambda runs it: in instances (worker
processes) that each take one event at a time, started on demand up to a limit and
kept warm, with a Lambda context, the environment of the host, and errors, crashes
and timeouts reported to the caller."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agentfiles_local.runtime import host as host_module
from agentfiles_local.runtime.gateway import Gateway, HttpRequest
from agentfiles_local.runtime.host import FunctionError, FunctionHost

PACKAGE = "tests.unit.hosted"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionHost]:
    monkeypatch.setenv("HOSTED_SETTING", "from the host")
    functions = FunctionHost(package=PACKAGE, concurrency=2)
    for name in ("echo", "fails", "broken"):
        assert functions.load(name)
    yield functions
    functions.stop()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_given_a_function_when_invoked_then_it_runs_in_its_own_process_with_a_lambda_context(host, caplog):
    # When: two invocations, one after the other
    with caplog.at_level(logging.INFO, logger="agentfiles_local.runtime.host"):
        first = host.invoke("echo", {"n": 1})
        second = host.invoke("echo", {"n": 2})

    # Then: one instance, in another process, started once (its INIT line) and kept warm
    assert first["event"] == {"n": 1} and second["event"] == {"n": 2}
    assert first["pid"] == second["pid"] != os.getpid()
    assert host.instances()["echo"] == 1
    assert [r.getMessage().split()[:2] for r in caplog.records if r.getMessage().startswith("INIT")] == [
        ["INIT", "echo#1"]
    ]
    # with what Lambda gives a function: its name, a request id, a deadline, the environment
    assert first["function"] == "echo"
    assert first["requestId"] != second["requestId"]
    assert 0 < first["remainingMs"] <= host_module.DEFAULT_SPEC.timeout_seconds * 1000
    assert first["setting"] == "from the host"


def test_given_concurrent_events_when_invoked_then_instances_run_them_in_parallel_up_to_the_limit(host):
    # When: three events that each take a while arrive at once, with a limit of two
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(host.invoke("echo", {"seconds": 0.5})))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then: two instances, and the first two events overlapped in time
    assert len(results) == 3
    assert len({result["pid"] for result in results}) == 2
    assert host.instances()["echo"] == 2
    first, second = sorted(results, key=lambda result: result["started"])[:2]
    assert second["started"] < first["ended"]


def test_given_a_function_that_raises_when_invoked_then_the_caller_gets_its_type_message_and_traceback(host):
    with pytest.raises(FunctionError) as raised:
        host.invoke("fails", "this")
    assert raised.value.error_type == "ValueError"
    assert str(raised.value) == "bad event: 'this'"
    assert 'raise ValueError(f"bad event: {event!r}")' in str(raised.value.__cause__)
    # and the instance stays warm for the next event
    assert host.invoke("fails", "ok") == host.invoke("fails", "ok")


def test_given_an_instance_that_dies_when_invoked_then_the_call_fails_and_the_next_one_gets_a_new_instance(
    host,
):
    before = host.invoke("fails", "ok")
    with pytest.raises(FunctionError) as raised:
        host.invoke("fails", "exit")
    assert raised.value.error_type == "Runtime.ExitError"
    assert not alive(before)
    after = host.invoke("fails", "ok")
    assert after != before
    assert host.instances()["fails"] == 1


def test_given_a_handler_that_cannot_be_imported_when_invoked_then_the_import_error_reaches_the_caller(host):
    with pytest.raises(FunctionError) as raised:
        host.invoke("broken", {})
    assert (raised.value.error_type, str(raised.value)) == ("ImportError", "a dependency is missing")
    assert host.instances()["broken"] == 0


def test_given_a_function_past_its_deadline_when_invoked_then_its_instance_is_stopped(host, monkeypatch):
    # Given: a deadline of one second
    monkeypatch.setattr(host_module, "DEFAULT_SPEC", host_module.DEFAULT_SPEC.__class__("echo", 1, 128, ""))
    monkeypatch.setattr(host_module, "DEADLINE_GRACE_SECONDS", 0.2)
    pid = host.invoke("echo", {})["pid"]
    # When: an event takes longer
    with pytest.raises(FunctionError) as raised:
        host.invoke("echo", {"seconds": 30})
    # Then
    assert raised.value.error_type == "Sandbox.Timedout"
    assert not alive(pid)
    assert host.instances()["echo"] == 0


def test_given_a_missing_function_when_loaded_then_it_is_reported_and_skipped():
    functions = FunctionHost(package=PACKAGE)
    assert functions.load("not_written_yet") is False
    assert functions.names == []


def test_given_running_instances_when_the_host_stops_then_their_processes_end(monkeypatch):
    functions = FunctionHost(package=PACKAGE, concurrency=2)
    functions.load("echo")
    pid = functions.invoke("echo", {})["pid"]
    functions.stop()
    assert not alive(pid)
    with pytest.raises(FunctionError):
        functions.invoke("echo", {})


def test_given_a_worker_function_that_fails_when_called_through_the_gateway_then_it_is_api_gateways_500(
    monkeypatch,
):
    functions = FunctionHost(package=PACKAGE)
    functions.load("fails")
    gateway = Gateway(functions, port=0, function="fails")
    try:
        token = gateway.tokens.issue("alice").token
        response = gateway.handle(HttpRequest("GET", "/files", [("Authorization", f"Bearer {token}")]))
        invoked = gateway.handle(HttpRequest("POST", "/dev/invoke/fails", [], b'"this"'))
    finally:
        gateway.stop()
        functions.stop()
    assert response.status == 500
    assert response.body == b'{"message": "Internal Server Error"}'
    # `aws lambda invoke` reports the function's own error type
    assert invoked.header("x-amz-function-error") == "Unhandled"
    assert b'"errorType": "ValueError"' in invoked.body


def test_given_a_warmed_host_when_the_first_events_arrive_then_they_find_an_instance_ready(host, caplog):
    # Given: one instance of each function started ahead (the broken one cannot start)
    with caplog.at_level(logging.INFO, logger="agentfiles_local.runtime.host"):
        host.warm()
        assert host.instances() == {"broken": 0, "echo": 1, "fails": 1}
        started = [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("INIT")]
        # When
        host.invoke("echo", {})
        host.invoke("fails", "ok")
    # Then: no instance started for them
    assert sorted(started) == ["echo#1", "fails#1"]
    assert [r.getMessage().split()[1] for r in caplog.records if r.getMessage().startswith("INIT")] == started
    assert any("broken could not start" in r.getMessage() for r in caplog.records)


def test_given_a_function_log_file_when_a_function_prints_its_json_then_it_goes_there_not_to_the_console(
    monkeypatch, tmp_path, capfd
):
    """`agentfiles serve` keeps the console for people: one line per request there, and
    what a function prints (its JSON logs and metrics, CloudWatch's share) in a file."""
    log_file = tmp_path / "functions.log"
    monkeypatch.setenv("AGENTFILES_FUNCTION_LOG", str(log_file))
    functions = FunctionHost(package=PACKAGE, concurrency=1)
    assert functions.load("logs")
    try:
        # When
        assert functions.invoke("logs", {}) == {"ok": True}
    finally:
        functions.stop()
    # Then: both lines in the file, neither on the console
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line.get("message") for line in lines] == ["handled", None]
    assert "_aws" in lines[1]
    printed = capfd.readouterr()
    assert "handled" not in printed.out + printed.err
