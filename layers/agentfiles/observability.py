"""Logger and metrics, one of each per function. Powertools' own variables name them
(POWERTOOLS_SERVICE_NAME, e.g. `agentfiles-api`, and POWERTOOLS_METRICS_NAMESPACE);
outside Lambda they fall back to `agentfiles`.

The functions log JSON, and Lambda's log-level filter (the application log level,
context `logLevel`) drops every line whose `level` is below it; a line without a
`level`, or with one Lambda does not know, or without an RFC 3339 `timestamp`, counts
as INFO. So:

- log lines carry Lambda's spelling of their level (`WARN`, not Python's `WARNING`;
  `FATAL`, not `CRITICAL`) and an RFC 3339 timestamp (not Python's `2026-12-03
  08:00:00,123+0000`), and
- metric lines (CloudWatch's embedded metric format, which Powertools prints with no
  level) carry the lowest level the filter keeps and their time, so metrics, and the
  alarms on them, survive any `logLevel`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "agentfiles")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "agentfiles")

# Lambda's levels, lowest first (its filter's vocabulary).
LAMBDA_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_LAMBDA_SPELLING = {"WARNING": "WARN", "CRITICAL": "FATAL", "NOTSET": "TRACE"}


def lambda_level(name: str) -> str:
    """Lambda's name for a Python or Lambda level name."""
    upper = name.upper()
    return _LAMBDA_SPELLING.get(upper, upper)


def metrics_level() -> str:
    """The level a metric line carries: the function's log level (Lambda's, which Lambda
    sets in AWS_LAMBDA_LOG_LEVEL, else Powertools'), never below INFO."""
    configured = (
        os.environ.get("AWS_LAMBDA_LOG_LEVEL")
        or os.environ.get("POWERTOOLS_LOG_LEVEL")
        or os.environ.get("LOG_LEVEL")
        or "INFO"
    )
    level = lambda_level(configured)
    if level not in LAMBDA_LEVELS:
        return "INFO"
    return max(level, "INFO", key=LAMBDA_LEVELS.index)


class LambdaLevelFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines, with the level spelled as Lambda's filter reads it."""

    def serialize(self, log: Any) -> str:
        if isinstance(log.get("level"), str):
            log["level"] = lambda_level(log["level"])
        return super().serialize(log)


class LevelledMetrics(AmazonCloudWatchEMFProvider):
    """Powertools' EMF lines, with a `level` that Lambda's log-level filter keeps (EMF
    takes a top-level key that no metric or dimension names as a plain property)."""

    def serialize_metric_set(
        self, metrics: dict | None = None, dimensions: dict | None = None, metadata: dict | None = None
    ) -> Any:
        serialized = super().serialize_metric_set(metrics=metrics, dimensions=dimensions, metadata=metadata)
        # EMF's own time is `_aws.Timestamp` (milliseconds); Lambda's filter reads `timestamp`.
        milliseconds = serialized["_aws"]["Timestamp"]
        timestamp = datetime.fromtimestamp(milliseconds / 1000, UTC).isoformat(timespec="milliseconds")
        return {"level": metrics_level(), "timestamp": timestamp, **serialized}


logger = Logger(service=SERVICE, logger_formatter=LambdaLevelFormatter(use_rfc3339=True))
# The service name is the metrics' one dimension, so each function's figures stand apart.
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# The same shared metric sets (Powertools keeps them on the class), printed with a level.
metrics.provider = LevelledMetrics(
    namespace=NAMESPACE,
    service=SERVICE,
    metric_set=metrics.metric_set,
    dimension_set=metrics.dimension_set,
    metadata_set=metrics.metadata_set,
    default_dimensions=metrics.default_dimensions,
)
