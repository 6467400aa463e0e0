"""Metrics survive Lambda's log-level filter. With JSON logs, Lambda drops each line
whose `level` is below the function's application log level, and counts a line without
a `level` it knows (TRACE, DEBUG, INFO, WARN, ERROR, FATAL), or without a valid RFC 3339
`timestamp`, as INFO. A function runs here
in a fresh interpreter with the environment Lambda gives it at `-c logLevel=WARNING`, and
its stdout goes through that rule."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from harness.imports import lambda_environment

LAMBDA_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
RFC_3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

EMIT = """
from aws_lambda_powertools.metrics import MetricUnit
from agentfiles.observability import logger, metrics

@metrics.log_metrics
def handler(event, context):
    metrics.add_metric(name="CandidatesFailed", unit=MetricUnit.Count, value=1)
    logger.info("a detail")
    logger.warning("a warning")
    logger.critical("the end")

handler({}, None)
"""


def kept_by_lambda(line: str, application_level: str) -> bool:
    """Lambda's log-level filter, as its documentation states it, for one stdout line."""
    try:
        record = json.loads(line)
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    level = str(record.get("level", "")).upper()
    if level not in LAMBDA_LEVELS or not RFC_3339.fullmatch(str(record.get("timestamp", ""))):
        level = "INFO"
    return LAMBDA_LEVELS.index(level) >= LAMBDA_LEVELS.index(application_level)


def _run(application_level: str, log_level: str) -> list[str]:
    environment = lambda_environment(
        # What Lambda sets for an application log level, and what the stack sets for Powertools.
        AWS_LAMBDA_LOG_LEVEL=application_level,
        AWS_LAMBDA_LOG_FORMAT="JSON",
        LOG_LEVEL=log_level,
        POWERTOOLS_SERVICE_NAME="agentfiles-vacuum",
        POWERTOOLS_METRICS_NAMESPACE="agentfiles",
    )
    result = subprocess.run([sys.executable, "-c", EMIT], capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize(("application_level", "log_level"), [("WARN", "WARNING"), ("ERROR", "ERROR")])
def test_given_a_log_level_above_info_when_a_function_flushes_metrics_then_lambda_keeps_the_emf_line(
    application_level: str, log_level: str
) -> None:
    # Given a function whose logs Lambda filters above INFO / When it records a metric and logs
    lines = _run(application_level, log_level)
    kept = [json.loads(line) for line in lines if kept_by_lambda(line, application_level)]

    # Then the metric line passes Lambda's filter, with its metric intact
    (emf,) = [record for record in kept if "_aws" in record]
    assert emf["CandidatesFailed"] == [1.0] or emf["CandidatesFailed"] == 1.0
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "agentfiles"
    assert emf["level"] == application_level
    # And the level names every line carries are Lambda's own
    assert {json.loads(line)["level"] for line in lines} <= set(LAMBDA_LEVELS)


def test_given_log_level_warning_when_a_function_logs_then_warnings_pass_as_warn_and_details_do_not() -> None:
    # Given -c logLevel=WARNING (Lambda filters at WARN, Powertools at WARNING) / When the function logs
    lines = _run("WARN", "WARNING")
    messages = {json.loads(line).get("message"): json.loads(line)["level"] for line in lines}

    # Then the warning is spelled WARN, which Lambda's filter knows, and the critical line FATAL
    assert messages["a warning"] == "WARN"
    assert messages["the end"] == "FATAL"
    assert all(kept_by_lambda(line, "WARN") for line in lines)
    # And the detail below the level was not written at all
    assert "a detail" not in messages
