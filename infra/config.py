"""What a deployment may choose, read once from CDK context (`cdk.json` or `-c key=value`).

Values from `-c` arrive as strings and values from `cdk.json` as JSON, so every
reader accepts both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from agentfiles import topology
from agentfiles.settings import ModelCapability, Settings
from infra.constants import REPO_ROOT

PRODUCTION_STAGE = "prod"
CDK_JSON = REPO_ROOT / "cdk.json"


class ConfigError(ValueError):
    """A context value that cannot make a working deployment."""


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"context {name!r} must be true or false, not {value!r}")


def _number(name: str, value: Any, minimum: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"context {name!r} must be a number, not {value!r}") from None
    if number < minimum:
        raise ConfigError(f"context {name!r} must be at least {minimum}, not {value!r}")
    return number


def _whole(name: str, value: Any, minimum: int) -> int:
    number = _number(name, value, minimum)
    if not number.is_integer():
        raise ConfigError(f"context {name!r} must be a whole number, not {value!r}")
    return int(number)


def _list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(text for item in items if (text := str(item).strip()))


_CAPABILITIES = TypeAdapter(dict[str, ModelCapability])


def _capabilities(name: str, value: Any) -> str:
    """`MODEL_CAPABILITIES` as the functions read it, checked here with the functions' own
    model: a misspelt key or a wrong type fails the synthesis, not the first reply."""
    try:
        if isinstance(value, str):
            table = _CAPABILITIES.validate_json(value)
        else:
            table = _CAPABILITIES.validate_python(value)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'value'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(
            f'context {name!r} must be a JSON object of model (or "*") to '
            f'{{"images", "files", "maxImageSide", "maxImageShortSide"}}: {problems}'
        ) from None
    # What the operator wrote, checked: unset fields keep the functions' defaults.
    dumped = {model: found.model_dump(by_alias=True, exclude_unset=True) for model, found in table.items()}
    return json.dumps(dumped, separators=(",", ":"))


def _default(field: str) -> Any:
    # The functions' own defaults are the stack's defaults: one value, one place.
    return Settings.model_fields[field].default


@dataclass(frozen=True)
class DeploymentConfig:
    stage: str = "dev"
    cors_origins: tuple[str, ...] = ("*",)
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    # Where the WebSocket authorizer reads the issuer's keys; unset, it finds them through
    # the issuer's OpenID discovery document (as the HTTP API's JWT authorizer does).
    jwks_url: str | None = None
    openai_secret_arn: str | None = None
    # The customer-managed KMS key that encrypts that secret, if any: the generate role
    # may then decrypt with it, through Secrets Manager only.
    secret_kms_key_arn: str | None = None
    openai_base_url: str | None = None
    model: str | None = None
    image_model: str | None = None
    # Limits: unset leaves the functions' own defaults (agentfiles.settings).
    models: tuple[str, ...] = ()
    image_models: tuple[str, ...] = ()
    storage_quota_bytes: int | None = None
    storage_quota_files: int | None = None
    generations_per_minute: int | None = None
    attachment_budget_bytes: int | None = None
    # MODEL_CAPABILITIES as JSON, checked (`modelCapabilities`); unset keeps the default.
    model_capabilities: str | None = None
    public_urls: bool = False
    vacuum_schedule_minutes: int = topology.VACUUM_SCHEDULE_MINUTES
    grace_seconds: int = _default("grace_seconds")
    # THREAD_RETENTION_DAYS for the scheduled run (and the admin command's default).
    thread_retention_days: int | None = None
    throttle_burst: int = 100
    throttle_rate: float = 50.0
    # How many generate invocations (each one model call at a time) may run at once: the
    # bound on what the model costs per minute, whatever the queue holds.
    generate_max_concurrency: int = 10
    log_level: str = "INFO"
    log_retention_days: int = 30
    alarm_email: str | None = None
    snap_start: bool = False
    # Sets the account's API Gateway CloudWatch Logs role (one per account and region),
    # without which a stage with access logs cannot deploy; `false` where the account
    # manages that role itself.
    api_gateway_account_role: bool = True
    # GuardDuty Malware Protection for S3 on the files bucket (`malwareScan`); unset: on
    # for the production stage, off for any other. What it cannot scan is refused or
    # accepted as `malwareUnscannable` says (MALWARE_UNSCANNABLE).
    malware_scan_context: bool | None = None
    malware_unscannable: str = _default("malware_unscannable")

    @property
    def malware_scan(self) -> bool:
        return self.production if self.malware_scan_context is None else self.malware_scan_context

    def __post_init__(self) -> None:
        if self.malware_unscannable not in ("reject", "allow"):
            raise ConfigError("context 'malwareUnscannable' must be reject or allow")
        if bool(self.jwt_issuer) != bool(self.jwt_audience):
            raise ConfigError("context 'jwtIssuer' and 'jwtAudience' go together: give both or neither")
        if self.jwt_issuer and not self.jwt_issuer.startswith("https://"):
            raise ConfigError("context 'jwtIssuer' must be an https:// URL")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("context 'logLevel' must be DEBUG, INFO, WARNING or ERROR")
        if not 2 <= self.generate_max_concurrency <= 1000:
            raise ConfigError("context 'generateMaxConcurrency' must be from 2 to 1000 (what SQS allows)")
        if self.openai_secret_arn and not self.openai_secret_arn.startswith("arn:"):
            raise ConfigError("context 'openaiSecretArn' must be a secret's full ARN")
        if self.jwks_url and not self.jwks_url.startswith("https://"):
            raise ConfigError("context 'jwksUrl' must be an https:// URL")
        if self.jwks_url and not self.jwt_issuer:
            raise ConfigError("context 'jwksUrl' is the keys of 'jwtIssuer': give the issuer too")
        if self.secret_kms_key_arn and not self.secret_kms_key_arn.startswith("arn:"):
            raise ConfigError("context 'secretKmsKeyArn' must be a KMS key's full ARN")
        if self.secret_kms_key_arn and not self.openai_secret_arn:
            raise ConfigError(
                "context 'secretKmsKeyArn' is the key of 'openaiSecretArn': give the secret too"
            )
        vacuum_timeout = topology.FUNCTIONS["vacuum"].timeout_seconds
        if self.vacuum_schedule_minutes * 60 <= vacuum_timeout:
            # EventBridge would start every run while the last may still be going: two
            # vacuums reading the same candidates and re-sending the same stuck work (safe,
            # each delete is conditional, but wasted). A retry or a duplicate delivery can
            # still meet a run now and then; a schedule this short would make it the rule.
            raise ConfigError(
                f"context 'vacuumScheduleMinutes' must be more than the vacuum's timeout "
                f"({vacuum_timeout} s), so that a scheduled run ends before the next starts"
            )

    @property
    def production(self) -> bool:
        return self.stage == PRODUCTION_STAGE

    @property
    def stack_name(self) -> str:
        return f"agentfiles-{self.stage}"

    @classmethod
    def from_context(cls, get: Any) -> DeploymentConfig:
        """`get` is `node.try_get_context`: a missing key gives None."""
        defaults = cls()

        def pick(key: str, parse: Any, default: Any) -> Any:
            value = get(key)
            return default if value is None else parse(key, value)

        return cls(
            stage=_text(get("stage")) or defaults.stage,
            cors_origins=_list(get("corsOrigins")) or defaults.cors_origins,
            jwt_issuer=_text(get("jwtIssuer")),
            jwt_audience=_list(get("jwtAudience")),
            jwks_url=_text(get("jwksUrl")),
            openai_secret_arn=_text(get("openaiSecretArn")),
            secret_kms_key_arn=_text(get("secretKmsKeyArn")),
            openai_base_url=_text(get("openaiBaseUrl")),
            model=_text(get("model")),
            image_model=_text(get("imageModel")),
            models=_list(get("models")),
            image_models=_list(get("imageModels")),
            storage_quota_bytes=pick("storageQuotaBytes", lambda k, v: _whole(k, v, 0), None),
            storage_quota_files=pick("storageQuotaFiles", lambda k, v: _whole(k, v, 0), None),
            generations_per_minute=pick("generationsPerMinute", lambda k, v: _whole(k, v, 1), None),
            attachment_budget_bytes=pick("attachmentBudgetBytes", lambda k, v: _whole(k, v, 1), None),
            model_capabilities=pick("modelCapabilities", _capabilities, None),
            public_urls=pick("publicUrls", _flag, defaults.public_urls),
            vacuum_schedule_minutes=pick(
                "vacuumScheduleMinutes", lambda k, v: _whole(k, v, 1), defaults.vacuum_schedule_minutes
            ),
            grace_seconds=pick("graceSeconds", lambda k, v: _whole(k, v, 0), defaults.grace_seconds),
            thread_retention_days=pick("threadRetentionDays", lambda k, v: _whole(k, v, 1), None),
            throttle_burst=pick("throttleBurst", lambda k, v: _whole(k, v, 1), defaults.throttle_burst),
            throttle_rate=pick("throttleRate", lambda k, v: _number(k, v, 1), defaults.throttle_rate),
            generate_max_concurrency=pick(
                "generateMaxConcurrency", lambda k, v: _whole(k, v, 2), defaults.generate_max_concurrency
            ),
            log_level=(_text(get("logLevel")) or defaults.log_level).upper(),
            log_retention_days=pick(
                "logRetentionDays", lambda k, v: _whole(k, v, 1), defaults.log_retention_days
            ),
            alarm_email=_text(get("alarmEmail")),
            snap_start=pick("snapStart", _flag, defaults.snap_start),
            api_gateway_account_role=pick("apiGatewayAccountRole", _flag, defaults.api_gateway_account_role),
            malware_scan_context=pick("malwareScan", _flag, None),
            malware_unscannable=(_text(get("malwareUnscannable")) or defaults.malware_unscannable).lower(),
        )


def cdk_json_context(path: Path = CDK_JSON) -> Mapping[str, Any]:
    """The context in `cdk.json` (feature flags and defaults).

    The CDK CLI passes it to the app itself; `python app.py` and the tests do not run
    through the CLI, so they load it here and synthesize the same template.
    """
    return json.loads(path.read_text())["context"]
