"""Publishing frames to a thread's followers through the @connections API (the local
stack's, spoken to by boto3 over HTTP): a connection API Gateway calls gone is forgotten."""

from __future__ import annotations

from agentfiles.data import clients, connection_rows, keys
from agentfiles.logic import push
from agentfiles.models.live import ThreadDeletedFrame
from agentfiles.settings import get_settings
from agentfiles_local.runtime.host import FunctionHost
from agentfiles_local.runtime.websocket import WebSocketGateway


def test_a_follower_whose_connection_is_gone_is_removed_with_its_subscriptions(aws, monkeypatch):
    # Given a connection following a thread, which the WebSocket API no longer knows (410)
    gateway = WebSocketGateway(FunctionHost()).start()
    try:
        monkeypatch.setenv("WEBSOCKET_CALLBACK_URL", gateway.callback_url)
        get_settings.cache_clear()
        clients.reset()
        thread = aws.new_thread()
        connection_rows.open_connection("alice", "gone+id=", 0, 2_000_000_000)
        assert connection_rows.follow("alice", thread, "gone+id=", 2_000_000_000)
        # When a frame is published to the thread
        reached = push.publish("alice", thread, [ThreadDeletedFrame(thread_id=thread)])
    finally:
        gateway.stop()
    # Then nobody got it, and the connection and its subscription are gone
    assert reached == 0
    assert connection_rows.subscribers("alice", thread) == []
    key = keys.connection_key("alice", "gone+id=")
    item = aws.dynamodb.get_item(TableName=aws.resources.table_name, Key=key.dynamo).get("Item")
    assert item is None


def test_without_a_callback_url_nothing_is_pushed_and_nothing_is_read(aws):
    from harness.calls import count_calls

    thread = aws.new_thread()
    with count_calls() as calls:
        assert push.publish("alice", thread, [ThreadDeletedFrame(thread_id=thread)]) == 0
    assert calls.names() == []
