"""Generate worker overhead around one streamed 200-token model call vs a direct SDK call; writes per chunk.

Both sides talk to the same built-in fake model over loopback HTTP in the same run;
the worker's side also pays for its DynamoDB calls (moto in-process) and the
handler's logging and metrics.
"""

from __future__ import annotations

import os
import statistics
import time

from openai import OpenAI

from agentfiles import model_client
from agentfiles.settings import get_settings
from agentfiles_local.events import LambdaContext
from agentfiles_local.fake_model import FakeModel
from harness.aws import local_aws
from harness.calls import count_calls

RUNS = 15
WORDS = 200


def _direct(fake: FakeModel) -> float:
    client = OpenAI(base_url=fake.url, api_key="bench", max_retries=0)
    started = time.perf_counter()
    stream = client.chat.completions.create(
        model="fake-chat",
        messages=[{"role": "user", "content": "tell me a story"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    elapsed = time.perf_counter() - started
    assert len(text.split()) >= WORDS
    return elapsed


class _AwsTime:
    """Wall time spent inside AWS calls (here: moto, in this process)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def before(self, **_: object) -> None:
        self._started = time.perf_counter()

    def after(self, **_: object) -> None:
        self.total += time.perf_counter() - self._started


def _worker(aws) -> tuple[float, int, int, float]:
    from agentfiles.data import clients
    from functions.generate.handler import lambda_handler

    thread = aws.new_thread()
    aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "tell me a story"})
    messages = aws.drain("generations")
    event = aws.sqs_event_for("generations", messages)
    aws_time = _AwsTime()
    events = clients.dynamodb().meta.events
    events.register("before-call.dynamodb.*", aws_time.before)
    events.register("after-call.dynamodb.*", aws_time.after)
    try:
        with count_calls() as calls:
            started = time.perf_counter()
            result = lambda_handler(event, LambdaContext("generate", 300))
            elapsed = time.perf_counter() - started
    finally:
        events.unregister("before-call.dynamodb.*", aws_time.before)
        events.unregister("after-call.dynamodb.*", aws_time.after)
    assert result == {"batchItemFailures": []}, result
    # The reply row's writes and its stream's delta rows (one per flush, and the end).
    writes = sum(1 for _, name, _ in calls.calls if name in ("PutItem", "UpdateItem", "TransactWriteItems"))
    return elapsed, writes, len(calls.calls), aws_time.total


def run() -> None:
    with FakeModel(word_count=WORDS) as fake:
        settings = {
            "OPENAI_BASE_URL": fake.url,
            "OPENAI_API_KEY": "bench",
            "URL_MODE": "inline",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
        }
        with local_aws(**settings) as aws:
            model_client.reset()
            _direct(fake), _worker(aws)  # warm both paths once
            direct = [_direct(fake) for _ in range(RUNS)]
            worker = [_worker(aws) for _ in range(RUNS)]
            d, w = statistics.median(direct), statistics.median(t for t, _, _, _ in worker)
            own = statistics.median(t - in_aws for t, _, _, in_aws in worker)
            print(f"   direct SDK stream of {WORDS} words: {d * 1000:.1f} ms (median of {RUNS})")
            print(
                f"   worker around the same call: {w * 1000:.1f} ms, {worker[0][2]} DynamoDB calls/reply "
                f"(a flush or two of this fast stream included); "
                f"ratio {w / d:.2f} (target <= 1.5)"
            )
            print(
                f"   the same without the time inside those calls (moto here, DynamoDB on AWS): "
                f"{own * 1000:.1f} ms; ratio {own / d:.2f}"
            )

            # Writes per reply: a slow stream (about 2 s) at the default flush interval, then
            # the same stream flushed on every chunk.
            fake.configure(chunk_delay_s=0.01)
            for flush_ms in ("250", "0"):
                os.environ["STREAM_FLUSH_MS"] = flush_ms
                get_settings.cache_clear()
                _, writes, _, _ = _worker(aws)
                chunks = fake.calls[-1].get("chunks") or WORDS + 2
                print(
                    f"   STREAM_FLUSH_MS={flush_ms:>3}: {writes} writes (reply row and delta rows) "
                    f"for ~{chunks} streamed chunks "
                    f"(ratio {writes / chunks:.3f})"
                )
        model_client.reset()
