"""EventBridge schedule → this function: delete the files nothing references past
their grace period, re-send stuck work, then delete threads idle past their
retention. Each stops while the invocation still has time left and continues on the
next scheduled run."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from agentfiles.logic.retention import RETENTION_TIME_MS, RetentionResult, run_retention
from agentfiles.logic.sweep import SWEEP_TIME_MS, SweepResult, run_sweep
from agentfiles.logic.vacuum import VacuumResult, run_vacuum
from agentfiles.observability import logger, metrics
from agentfiles.settings import get_settings

# Fail at init, naming any variable the deployment did not set.
get_settings()


def _summary(result: VacuumResult | SweepResult | RetentionResult) -> dict[str, Any]:
    return {to_camel(name): value for name, value in asdict(result).items()}


def _emit(vacuum: VacuumResult, sweep: SweepResult, retention: RetentionResult) -> None:
    for name, value, unit in (
        ("FilesDeleted", vacuum.files_deleted, MetricUnit.Count),
        ("BytesFreed", vacuum.bytes_freed, MetricUnit.Bytes),
        ("MarkersCleared", vacuum.markers_cleared, MetricUnit.Count),
        ("CandidatesSkipped", vacuum.candidates_skipped, MetricUnit.Count),
        ("CandidatesFailed", vacuum.candidates_failed, MetricUnit.Count),
        ("RepliesResent", sweep.replies_resent, MetricUnit.Count),
        ("RepliesGivenUp", sweep.replies_failed, MetricUnit.Count),
        ("ThreadCleanupsResent", sweep.thread_cleanups_resent, MetricUnit.Count),
        ("SweepFailures", sweep.failures, MetricUnit.Count),
        ("ThreadsExpired", retention.threads_expired, MetricUnit.Count),
        ("RetentionFailures", retention.failures, MetricUnit.Count),
    ):
        metrics.add_metric(name=name, unit=unit, value=value)


# A schedule arrives as an EventBridge rule's (or EventBridge Scheduler's) "Scheduled Event".
_SCHEDULE_SOURCES = ("aws.events", "aws.scheduler")


def _schedule_or_reason(raw: dict[str, Any]) -> str | EventBridgeModel:
    """The schedule's event, or why this event is skipped: the vacuum runs only on its
    schedule, not on whatever else a misrouted rule sends."""
    try:
        event = EventBridgeModel.model_validate(raw)
    except ValidationError:
        return "not an EventBridge event"
    if event.source not in _SCHEDULE_SOURCES or event.detail_type != "Scheduled Event":
        return f"{event.source}: {event.detail_type}"
    return event


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(raw: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    event = _schedule_or_reason(raw)
    if isinstance(event, str):
        logger.warning("event skipped", extra={"reason": event})
        metrics.add_metric(name="EventsSkipped", unit=MetricUnit.Count, value=1)
        return {"skipped": event}
    logger.append_keys(scheduled_at=event.time.isoformat(), rule=",".join(event.resources))
    remaining = context.get_remaining_time_in_millis
    # The vacuum leaves the sweep and retention their shares of the invocation.
    vacuum = run_vacuum(lambda: remaining() - SWEEP_TIME_MS - RETENTION_TIME_MS)
    sweep = run_sweep(lambda: remaining() - RETENTION_TIME_MS)
    retention = run_retention(remaining)
    _emit(vacuum, sweep, retention)
    summary = {"vacuum": _summary(vacuum), "sweep": _summary(sweep), "retention": _summary(retention)}
    logger.info("vacuum run done", extra=summary)
    return summary
