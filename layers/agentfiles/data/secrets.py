"""Secrets Manager: read once per container by the caller that caches the result."""

from __future__ import annotations

from agentfiles.data import clients


def read_secret(arn: str) -> str:
    value = clients.secrets().get_secret_value(SecretId=arn)
    return value.get("SecretString") or ""
