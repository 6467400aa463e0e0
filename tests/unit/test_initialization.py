"""How a function starts (`agentfiles.initialization`): what it loads depends on whether a
request waits, and what a SnapStart snapshot must renew once restored."""

from __future__ import annotations

import random
import sys
import types

import pytest

from agentfiles import initialization
from agentfiles.data import clients
from agentfiles.ids import new_ulid


@pytest.mark.parametrize(
    ("initialization_type", "ahead"),
    [(None, False), ("on-demand", False), ("snap-start", True), ("provisioned-concurrency", True)],
)
def test_only_an_init_no_request_waits_for_loads_ahead(monkeypatch, initialization_type, ahead):
    if initialization_type is None:
        monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    else:
        monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", initialization_type)
    assert initialization.ahead_of_requests() is ahead


def test_restored_copies_of_one_snapshot_draw_different_random_numbers():
    # Given the state of `random` as a snapshot holds it, restored twice
    snapshot = random.getstate()
    first = [random.random() for _ in range(3)]
    random.setstate(snapshot)
    # When the second copy runs the restore hook before drawing
    initialization.after_restore()
    second = [random.random() for _ in range(3)]
    # Then its numbers (retry jitter among them) are not the first copy's
    assert first != second


def test_ids_do_not_depend_on_the_state_a_snapshot_shares():
    # Given the same `random` state in two restored copies, and no restore hook run
    snapshot = random.getstate()
    first = new_ulid(now_ms=0)
    random.setstate(snapshot)
    # Then their ids still differ: their entropy comes from the kernel, not from `random`
    assert new_ulid(now_ms=0) != first


def test_a_restore_drops_the_clients_created_before_the_snapshot(monkeypatch):
    # Given a client created at init (a snapshot holds it, with its connections)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clients.reset()
    before = clients.sqs()
    # When the snapshot is restored
    initialization.after_restore()
    # Then the next use makes a new client, from the same session (its parsed models)
    after = clients.sqs()
    assert after is not before
    assert clients.session() is clients.session()
    clients.reset()


def test_without_the_runtime_library_no_hook_is_registered(monkeypatch):
    # Given an interpreter outside Lambda's runtime (no snapshot_restore_py)
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)
    assert initialization.register_after_restore() is False


def test_in_the_runtime_the_restore_hook_is_registered(monkeypatch):
    # Given the runtime's hook library (a stand-in that records registrations)
    registered = []
    library = types.ModuleType("snapshot_restore_py")
    library.register_after_restore = lambda hook, *args, **kwargs: registered.append(hook)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", library)
    # When a function registers its hook / Then the runtime will call after_restore
    assert initialization.register_after_restore() is True
    assert registered == [initialization.after_restore]


def test_an_init_no_request_waits_for_loads_builds_and_connects_everything(monkeypatch):
    # Given a SnapStart init
    from agentfiles.models.files import FilePage

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clients.reset()
    loaded = []
    # When the function prepares
    initialization.prepare(lambda: loaded.append(True))
    # Then it loaded what it would load on demand, built its models and made its clients
    assert loaded == [True]
    assert FilePage.__pydantic_complete__
    assert clients.dynamodb.cache_info().currsize == 1
    clients.reset()


def test_an_init_on_demand_leaves_all_that_to_the_requests(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
    clients.reset()
    loaded = []
    initialization.prepare(lambda: loaded.append(True))
    assert loaded == []
    assert clients.dynamodb.cache_info().currsize == 0
