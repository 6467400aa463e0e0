"""Answers with what it was given and where it ran."""

from __future__ import annotations

import os
import time
from typing import Any


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    started = time.monotonic()
    time.sleep(float(event.get("seconds", 0)) if isinstance(event, dict) else 0)
    return {
        "event": event,
        "pid": os.getpid(),
        "function": context.function_name,
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
        "setting": os.environ.get("HOSTED_SETTING"),
        "started": started,
        "ended": time.monotonic(),
    }
