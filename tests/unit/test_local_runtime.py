"""The pieces around the pollers and the gateway: the in-process host's one-at-a-time
rule, the vacuum schedule, the runtime's settings and the `agentfiles` command."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest

from agentfiles_cli import cli
from agentfiles_local.runtime.host import FunctionHost
from agentfiles_local.runtime.scheduler import Schedule
from agentfiles_local.runtime.stack import StackConfig


def wait_until(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# ---- the function host -------------------------------------------------------


def test_given_the_repository_functions_when_loaded_then_each_exists_or_is_reported_missing():
    host = FunctionHost()
    assert host.load("api") is True
    assert host.load("not_written_yet") is False
    assert host.names == ["api"]


def test_given_a_function_when_invoked_then_it_gets_a_lambda_context_with_its_deadline():
    host = FunctionHost()
    contexts: list[Any] = []
    host.add("generate", lambda event, context: contexts.append(context) or "done")
    assert host.invoke("generate", {}) == "done"
    (context,) = contexts
    assert context.function_name == "generate"
    assert 299_000 < context.get_remaining_time_in_millis() <= 300_000


def test_given_a_busy_function_when_it_is_invoked_again_then_the_call_waits_but_other_functions_run():
    # Given: `api` is busy until released
    host = FunctionHost()
    release = threading.Event()
    entered: list[str] = []

    def api(event: Any, context: Any) -> None:
        entered.append(event)
        release.wait(10)

    host.add("api", api)
    host.add("generate", lambda event, context: entered.append(event))
    first = threading.Thread(target=host.invoke, args=("api", "first"))
    first.start()
    assert wait_until(lambda: entered == ["first"])

    # When: a second api request and a generate invocation arrive
    second = threading.Thread(target=host.invoke, args=("api", "second"))
    second.start()
    host.invoke("generate", "job")

    # Then: generate ran at once; the second request waits for the first
    assert entered == ["first", "job"]
    assert second.is_alive()
    release.set()
    first.join(5)
    second.join(5)
    assert entered == ["first", "job", "second"]


# ---- the schedule ------------------------------------------------------------


def test_given_the_vacuum_schedule_when_running_then_each_tick_sends_a_scheduled_event():
    # Given: a vacuum that fails once, then succeeds
    host = FunctionHost()
    events: list[dict[str, Any]] = []

    def vacuum(event: dict[str, Any], context: Any) -> None:
        events.append(event)
        if len(events) == 1:
            raise RuntimeError("a bad run")

    host.add("vacuum", vacuum)
    schedule = Schedule(host, "vacuum", interval_seconds=0.05).start()
    # When
    try:
        assert wait_until(lambda: len(events) >= 2)
    finally:
        schedule.stop()
    # Then: a failed run did not stop the schedule, and each event is EventBridge's
    assert not schedule.running
    assert {event["detail-type"] for event in events} == {"Scheduled Event"}
    assert events[0]["id"] != events[1]["id"]


# ---- settings and the command ------------------------------------------------


def test_given_no_environment_when_configured_then_the_local_defaults_apply():
    config = StackConfig.from_env({})
    assert (config.port, config.moto_port, config.queue_visibility_seconds) == (8000, 0, 5)
    assert config.vacuum_interval_seconds == 30
    assert config.concurrency == max(2, os.cpu_count() or 2)
    # The built-in model streams at a pace a person can watch (and stop), word by word
    assert 30 <= config.fake_model_word_delay_ms <= 200


def test_given_the_environment_when_configured_then_it_wins():
    config = StackConfig.from_env(
        {
            "PORT": "9001",
            "MOTO_PORT": "5001",
            "QUEUE_VISIBILITY_SECONDS": "2",
            "VACUUM_INTERVAL_SECONDS": "0.5",
            "LOCAL_CONCURRENCY": "6",
            "FAKE_MODEL_WORD_DELAY_MS": "0",
        }
    )
    assert config.fake_model_word_delay_ms == 0
    assert (config.port, config.moto_port, config.queue_visibility_seconds) == (9001, 5001, 2)
    assert config.vacuum_interval_seconds == 0.5
    assert config.concurrency == 6


@pytest.mark.parametrize(
    ("name", "value"),
    [("PORT", "eighty"), ("PORT", "70000"), ("QUEUE_VISIBILITY_SECONDS", "0"), ("LOCAL_CONCURRENCY", "0")],
)
def test_given_a_bad_value_when_configured_then_the_error_names_the_variable(name, value):
    with pytest.raises(ValueError, match=name):
        StackConfig.from_env({name: value})


def test_given_serve_help_when_printed_then_it_documents_every_variable(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for variable in (
        "PORT",
        "MOTO_PORT",
        "FAKE_MODEL_PORT",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "URL_MODE",
        "GRACE_SECONDS",
        "VACUUM_INTERVAL_SECONDS",
        "RETRY_BASE_SECONDS",
        "QUEUE_VISIBILITY_SECONDS",
        "LOCAL_CONCURRENCY",
        "FAKE_MODEL_WORD_DELAY_MS",
    ):
        assert variable in text


def test_given_a_bad_port_when_serving_then_it_exits_2_before_starting_anything(monkeypatch, capsys):
    monkeypatch.setenv("PORT", "nope")
    assert cli.main(["serve"]) == 2
    assert "PORT" in capsys.readouterr().err


def test_given_a_port_whose_last_connections_wait_in_time_wait_when_the_stack_probes_it_then_it_is_free():
    """`make run` right after Ctrl-C: the stopped stack closed its connections first,
    so they wait out TIME_WAIT on its port; its servers bind with SO_REUSEADDR, and the
    free-port probe must too (or it says "Address already in use")."""
    from agentfiles_local.runtime.stack import _check_free

    # Given: a server that answered a client and closed the connection first, then stopped
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server's side closes first: it is the one left in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    # When / Then: the probe finds the port free, as the servers that bind it next will
    _check_free(port, "PORT")
    # And a server binds it, as the gateway does
    rebound = socket.create_server(("127.0.0.1", port))
    rebound.close()


def test_given_cors_origins_when_configured_then_they_are_named_never_any():
    config = StackConfig.from_env({"CORS_ORIGINS": "http://localhost:5173, http://127.0.0.1:3000"})
    assert config.web_origins == ("http://localhost:5173", "http://127.0.0.1:3000")
    assert StackConfig.from_env({}).web_origins == ()
    with pytest.raises(ValueError, match="CORS_ORIGINS"):
        StackConfig.from_env({"CORS_ORIGINS": "*"})
