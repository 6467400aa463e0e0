"""Prints what a Powertools function prints on Lambda: a JSON log line and an EMF blob."""

from __future__ import annotations

import json
from typing import Any


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    print(json.dumps({"level": "INFO", "message": "handled", "function_name": context.function_name}))
    print(json.dumps({"_aws": {"CloudWatchMetrics": []}, "Handled": [1.0]}))
    return {"ok": True}
