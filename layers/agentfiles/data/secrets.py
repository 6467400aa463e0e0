"""Secrets Manager, through Powertools' parameters: a value is kept for `max_age`
seconds and then read again, so a rotated secret reaches a warm container without a
cold start. Only the generate function imports this module."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from agentfiles.data import clients


@cache
def _provider() -> SecretsProvider:
    # The data layer's own client: its endpoint and retries are everyone's.
    return SecretsProvider(boto3_client=clients.secrets())


def read_secret(arn: str, max_age_seconds: int) -> str:
    value = _provider().get(arn, max_age=max_age_seconds)
    return value if isinstance(value, str) else ""


def reset() -> None:
    """Forget the provider and its cached values (tests, after moving endpoints)."""
    _provider.cache_clear()
