"""Logger and metrics, one of each per function. Powertools' own variables name them
(POWERTOOLS_SERVICE_NAME, e.g. `agentfiles-api`, and POWERTOOLS_METRICS_NAMESPACE);
outside Lambda they fall back to `agentfiles`."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "agentfiles")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "agentfiles")

logger = Logger(service=SERVICE)
# The service name is the metrics' one dimension, so each function's figures stand apart.
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
