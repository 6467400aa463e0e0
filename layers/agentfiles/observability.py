"""Logger and metrics, one of each per function (Powertools reads the service name
and namespace from POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="agentfiles")
metrics = Metrics(namespace="agentfiles")
