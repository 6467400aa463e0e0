"""Log groups' retention and API Gateway's access logs as JSON lines, for every
construct that keeps logs."""

from __future__ import annotations

import json

import jsii
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        allowed = ", ".join(str(value) for value in _RETENTION)
        raise ValueError(f"logRetentionDays must be one of {allowed}, not {days}") from None


@jsii.implements(apigwv2.IAccessLogSettings)
class JsonAccessLogs:
    """Access logs of a stage as JSON lines in a log group, with the fields its API logs."""

    def __init__(self, log_group: logs.ILogGroup, fields: dict[str, str]) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._fields = fields

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigateway.AccessLogFormat:
        return apigateway.AccessLogFormat.custom(json.dumps(self._fields))
