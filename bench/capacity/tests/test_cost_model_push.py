"""The cost model's push column is measured, not modelled: a page subscribed through the
websocket function's events gets every delta the generate worker wrote, pushed through
@connections or read back after a dropped connection, and each push is priced from the
call the functions made."""

from __future__ import annotations

import pytest

from bench.capacity import cost_model
from bench.capacity import pricing as q

# Both tests read one measured conversation: keep them on one worker.
pytestmark = pytest.mark.xdist_group("cost_model_push")

# A short conversation: two replies of ~600 bytes, streamed over 1.5 s each, the page's
# socket dropped half way through the second and back a quarter of a second later.
SHORT = cost_model.Workload(
    turns=2,
    images=1,
    image_width=64,
    image_height=48,
    pdfs=0,
    prompt_bytes=64,
    reply_bytes=600,
    stream_seconds=3,
    think_seconds=1,
    time_scale=0.5,
    reconnects=1,
    reconnect_gap_s=0.5,
)


@pytest.fixture(scope="module")
def measured() -> cost_model.Measurement:
    return cost_model.measure(SHORT, fresh=True)


def test_every_delta_reaches_the_page_once_pushed_as_a_frame_or_read_back(measured):
    # Given a conversation measured with a page on the WebSocket, dropped once mid-reply
    delivery = cost_model.measured_push_delivery(measured)
    # When its pushes are counted
    frames = [call for call, _ in delivery if call.label == "delta frame"]
    caught_up = sum(turn.caught_up for turn in measured.turns)
    # Then each is a PostToConnection the functions made, billed as one message and its bytes
    assert frames and all(call.operation == "PostToConnection" for call in frames)
    assert all(call.usage[q.WEBSOCKET_MESSAGES] == 1 for call in frames)
    assert all(call.usage[q.TRANSFER_OUT_BYTES] > 0 for call in frames)
    # And the frames pushed plus the deltas read back after the reconnect are the deltas written
    assert caught_up > 0
    assert len(frames) + caught_up == sum(turn.deltas for turn in measured.turns)
    # And the page connected twice (the authorizer, then $connect each time)
    invoked = [call.label for call, _ in delivery if call.service == "lambda"]
    assert invoked.count("authorize") == invoked.count("connect") == 2
    assert invoked.count("catch-up read") == 1


def test_nothing_of_push_is_modelled_but_its_connection_minutes(measured):
    # Given the measured conversation
    # When both columns are priced
    report = cost_model.report(measured)
    delivery = cost_model.measured_push_delivery(measured)
    # Then push's delivery is measured request by request, but for the minutes the page is connected
    assert [call.operation for call, _ in delivery if call.modelled] == ["connection-minutes"]
    assert report.push_delivery_modelled < 0.01
    # And polling's is the measured poll times how many polls the workload makes
    assert report.polling_delivery_modelled == 1.0
    polls = [wt for call, wt in cost_model.polling_delivery(measured) if call.service == "lambda"]
    assert sum(polls) == SHORT.turns * SHORT.polls_per_reply
    # And the push column holds no poll, the polling column no push
    assert not any(call.label == "poll" for call, _ in cost_model.push_scenario(measured))
    push_labels = {call.label for call, _ in cost_model.polling_scenario(measured)} & cost_model.PUSH_LABELS
    assert push_labels == set()
