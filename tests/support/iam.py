"""Are a function's recorded AWS calls allowed by its role in the synthesized template?

The local stack records every call each function makes (`agentfiles_local.runtime.aws_calls`).
Here each call becomes the IAM authorizations it needs (`needs`: action and resource ARN,
with the exceptions the Service Authorization Reference lists: HEAD is `s3:GetObject`, a
transaction is authorized item by item, a Query on an index acts on the index's ARN,
`@connections` is `execute-api:ManageConnections` on API/stage/method/path, ...), and
each authorization is decided against the policies attached to that function's role in a
synthesized template (`check`), as IAM decides it: allowed when an Allow statement matches
its action and resource (wildcards included) and no Deny does.

The template names resources by tokens (`Fn::GetAtt`, `Ref`, `Fn::Join`). They are resolved
through a correspondence between the local stack's resources and the stack's constructs,
named as `infra.permissions` names them (the table, the bucket, each queue and dead-letter
queue, the model key's secret, the WebSocket API): each construct's ARN, resolved by the
CDK, stands for the local resource's ARN. A token outside the correspondence stays
unresolved and matches nothing but `*`.

Stricter than AWS where it cannot know: a statement with a Condition never allows and
always denies; AWS-managed policies attached by ARN are not read (they could only allow
more). Resource-based policies are not evaluated: they are the resources' own (TLS-only
denies, CloudFront's read), and they grant these roles nothing.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from agentfiles import topology
from infra import permissions
from infra.websocket import STAGE as PUSH_STAGE
from tests.infra.synthesis import Synthesized

PARTITION = "aws"
# The local WebSocket API has no id; this one stands for it on both sides.
LOCAL_PUSH_API_ID = "local-push-api"
# What Lambda itself does with a function's role: its logs, its traces, and polling its
# queue for the event source mapping. Granted, but never called by the function's code.
RUNTIME_ACTIONS = frozenset(
    {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:ChangeMessageVisibility",
    }
)


# ---- what was recorded


@dataclass(frozen=True)
class RecordedCall:
    """One line of the recording."""

    function: str
    service: str
    signing_name: str
    operation: str
    http_method: str | None
    presigned: bool
    params: Mapping[str, Any]
    url: str | None = None

    @classmethod
    def of(cls, line: Mapping[str, Any]) -> RecordedCall:
        return cls(
            function=line["function"],
            service=line["service"],
            signing_name=line["signingName"],
            operation=line["operation"],
            http_method=line.get("httpMethod"),
            presigned=bool(line.get("presigned")),
            params=line.get("params") or {},
            url=line.get("url"),
        )

    def describe(self) -> str:
        return f"{self.service}.{self.operation}" + (" (presigned)" if self.presigned else "")


def read_calls(directory: Path) -> list[RecordedCall]:
    """Every call recorded in a directory, all functions and instances."""
    return [
        RecordedCall.of(json.loads(line))
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


# ---- the local resources, named as infra.permissions names them


@dataclass(frozen=True)
class LocalResources:
    region: str
    account: str
    table: str
    bucket: str
    # "queue:<name>" / "dlq:<name>" → (URL, ARN)
    queues: Mapping[str, tuple[str, str]]
    # The model key's secret, by name and by ARN (a call may name it either way).
    secret_name: str | None
    secret_arn: str | None
    # The WebSocket API's @connections endpoint (`http://host:port/{stage}`): it stands for
    # the deployed API's stage, whatever the local stage is called.
    callback_url: str

    def table_arn(self, name: str | None = None) -> str:
        return f"arn:{PARTITION}:dynamodb:{self.region}:{self.account}:table/{name or self.table}"

    def bucket_arn(self, name: str | None = None) -> str:
        return f"arn:{PARTITION}:s3:::{name or self.bucket}"

    def queue_arn(self, url: str) -> str:
        for queue_url, arn in self.queues.values():
            if queue_url == url:
                return arn
        return f"<queue not in the local stack: {url}>"

    def secret(self, secret_id: str) -> str:
        if self.secret_arn and secret_id in (self.secret_name, self.secret_arn):
            return self.secret_arn
        if secret_id.startswith("arn:"):
            return secret_id
        return f"arn:{PARTITION}:secretsmanager:{self.region}:{self.account}:secret:{secret_id}"

    def connections(self, url: str | None, method: str, connection_id: str) -> str:
        """`arn:...:execute-api:region:account:api/stage/METHOD/@connections/id`, for a call
        to the local endpoint: the deployed API and stage (`infra.websocket.STAGE`)."""
        ours = self.callback_url.rstrip("/") + "/"
        target = f"<an @connections endpoint not in the local stack: {url}>"
        if url and url.startswith(ours):
            target = f"{LOCAL_PUSH_API_ID}/{PUSH_STAGE}"
        return (
            f"arn:{PARTITION}:execute-api:{self.region}:{self.account}:"
            f"{target}/{method}/@connections/{connection_id}"
        )

    def by_permission_name(self) -> dict[str, str]:
        """Each resource's ARN (the API's id for the WebSocket API), keyed as
        `infra.permissions` names it."""
        named = {permissions.TABLE: self.table_arn(), permissions.BUCKET: self.bucket_arn()}
        named |= {name: arn for name, (_, arn) in self.queues.items()}
        if self.secret_arn:
            named[permissions.SECRET] = self.secret_arn
        named[permissions.CONNECTIONS] = LOCAL_PUSH_API_ID
        return named


# ---- call → the authorizations it needs


class Unmapped(Exception):
    """A call whose IAM action is not known here: add it below."""


@dataclass(frozen=True, order=True)
class Need:
    function: str
    action: str
    resource: str


_S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "GetObjectTagging": "s3:GetObjectTagging",
    "PutObjectTagging": "s3:PutObjectTagging",
    "DeleteObjectTagging": "s3:DeleteObjectTagging",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
}
# With a VersionId, S3 authorizes the version's own action.
_S3_VERSIONED = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
}
# Tags sent with the object need the tagging action as well.
_S3_TAGGED_WRITES = {"PutObject", "CreateMultipartUpload"}
_DYNAMODB_ITEM_OR_TABLE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "DescribeTable"}
_DYNAMODB_BATCH = {"BatchGetItem", "BatchWriteItem"}
# A transaction is authorized item by item, by each item's own action.
_DYNAMODB_TRANSACT = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
_SQS_ACTIONS = {
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "PurgeQueue": "sqs:PurgeQueue",
}
_SECRETS_ACTIONS = {"GetSecretValue", "DescribeSecret"}
_CONNECTIONS_OPERATIONS = {"PostToConnection", "GetConnection", "DeleteConnection"}


def needs(call: RecordedCall, local: LocalResources) -> list[Need]:
    """The (action, resource) pairs IAM checks for this call, for the function that made it."""
    pairs = _pairs(call, local)
    return [Need(call.function, action, resource) for action, resource in pairs]


def _pairs(call: RecordedCall, local: LocalResources) -> list[tuple[str, str]]:
    params, operation = call.params, call.operation
    if call.signing_name == "s3" and operation in _S3_ACTIONS:
        action = _S3_ACTIONS[operation]
        bucket = str(params["Bucket"])
        if operation == "DeleteObjects":
            keys = [str(key) for key in params.get("Keys", [])] or ["*"]
        elif "Key" in params:
            keys = [str(params["Key"])]
        else:
            return [(action, local.bucket_arn(bucket))]
        if "VersionId" in params:
            action = _S3_VERSIONED.get(action, action)
        objects = [f"{local.bucket_arn(bucket)}/{key}" for key in keys]
        pairs = [(action, arn) for arn in objects]
        if params.get("Tagging") and operation in _S3_TAGGED_WRITES:
            pairs += [("s3:PutObjectTagging", arn) for arn in objects]
        return pairs
    if call.signing_name == "dynamodb":
        if operation in _DYNAMODB_ITEM_OR_TABLE:
            arn = local.table_arn(params.get("TableName"))
            if operation in ("Query", "Scan") and params.get("IndexName"):
                arn = f"{arn}/index/{params['IndexName']}"
            return [(f"dynamodb:{operation}", arn)]
        if operation in _DYNAMODB_BATCH:
            return [
                (f"dynamodb:{operation}", local.table_arn(table)) for table in params.get("RequestItems", {})
            ]
        if operation in ("TransactWriteItems", "TransactGetItems"):
            return [
                (_DYNAMODB_TRANSACT[kind], local.table_arn(body.get("TableName")))
                for item in params.get("TransactItems", [])
                for kind, body in item.items()
            ]
    if call.signing_name == "sqs" and operation in _SQS_ACTIONS and "QueueUrl" in params:
        return [(_SQS_ACTIONS[operation], local.queue_arn(str(params["QueueUrl"])))]
    if call.signing_name == "secretsmanager" and operation in _SECRETS_ACTIONS:
        return [(f"secretsmanager:{operation}", local.secret(str(params["SecretId"])))]
    if call.signing_name == "execute-api" and operation in _CONNECTIONS_OPERATIONS:
        arn = local.connections(call.url, call.http_method or "POST", str(params.get("ConnectionId", "")))
        return [("execute-api:ManageConnections", arn)]
    raise Unmapped(f"{call.function} called {call.describe()}: its IAM action is not mapped in {__name__}")


# ---- the template's policies, resolved to local ARNs


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_action: bool
    not_resource: bool
    conditional: bool
    where: str

    def matches(self, action: str, resource: str) -> bool:
        action_hit = any(_wildcard(pattern, action, ignore_case=True) for pattern in self.actions)
        resource_hit = any(_arn_matches(pattern, resource) for pattern in self.resources)
        return action_hit != self.not_action and resource_hit != self.not_resource


@cache
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).fullmatch(value) is not None


def _arn_matches(pattern: str, arn: str) -> bool:
    """IAM's resource match: `*` alone matches anything, otherwise each ARN segment
    (partition, service, region, account, resource) matches with `*` and `?`."""
    if pattern == "*":
        return True
    wanted, actual = pattern.split(":", 5), arn.split(":", 5)
    return len(wanted) == len(actual) == 6 and all(
        _wildcard(w, a) for w, a in zip(wanted, actual, strict=True)
    )


def _canonical(expression: Any) -> str:
    return json.dumps(expression, sort_keys=True)


class TemplateResolver:
    """Turns the template's resource expressions into local ARNs."""

    def __init__(self, synthesized: Synthesized, local: LocalResources) -> None:
        stack = synthesized.stack
        tokens: dict[str, Any] = {
            permissions.TABLE: stack.storage.table.table_arn,
            permissions.BUCKET: stack.storage.bucket.bucket_arn,
            permissions.SECRET: stack.functions.openai_secret.secret_arn,
            permissions.CONNECTIONS: stack.push.api.api_id,
        }
        for spec in topology.QUEUES.values():
            tokens[permissions.queue(spec.name)] = stack.queues[spec.name].queue.queue_arn
            tokens[permissions.dlq(spec.name)] = stack.queues[spec.name].dlq.queue_arn
        local_values = local.by_permission_name()
        self._substitutions = {
            _canonical(stack.resolve(token)): local_values[name]
            for name, token in tokens.items()
            if name in local_values
        }
        self._pseudo = {
            "AWS::Partition": PARTITION,
            "AWS::Region": local.region,
            "AWS::AccountId": local.account,
            "AWS::URLSuffix": "amazonaws.com",
        }

    def resolve(self, expression: Any) -> str:
        key = _canonical(expression)
        if key in self._substitutions:
            return self._substitutions[key]
        if isinstance(expression, str):
            return expression
        if isinstance(expression, dict) and expression.get("Ref") in self._pseudo:
            return self._pseudo[expression["Ref"]]
        if isinstance(expression, dict) and "Fn::Join" in expression:
            separator, parts = expression["Fn::Join"]
            return separator.join(self.resolve(part) for part in parts)
        return f"<unresolved {key}>"


def role_statements(synthesized: Synthesized, function: str, resolver: TemplateResolver) -> list[Statement]:
    """Every statement of every policy attached to the function's role, resolved."""
    role = synthesized.stack.functions[function].role
    assert role is not None, f"{function} has no role"
    role_id = synthesized.logical_id(role)
    resources = synthesized.data["Resources"]
    role_properties = resources[role_id]["Properties"]
    assert "PermissionsBoundary" not in role_properties, "permission boundaries are not evaluated here"
    documents = [
        (f"{role_id}.Policies[{index}]", policy["PolicyDocument"])
        for index, policy in enumerate(role_properties.get("Policies", []))
    ]
    for logical_id, resource in resources.items():
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            properties = resource["Properties"]
            if {"Ref": role_id} in properties.get("Roles", []):
                documents.append((logical_id, properties["PolicyDocument"]))
    statements = []
    for where, document in documents:
        for index, raw in enumerate(_listed(document["Statement"])):
            action_key = "NotAction" if "NotAction" in raw else "Action"
            resource_key = "NotResource" if "NotResource" in raw else "Resource"
            statements.append(
                Statement(
                    effect=raw["Effect"],
                    actions=tuple(_listed(raw[action_key])),
                    resources=tuple(resolver.resolve(r) for r in _listed(raw[resource_key])),
                    not_action=action_key == "NotAction",
                    not_resource=resource_key == "NotResource",
                    conditional="Condition" in raw,
                    where=f"{where} statement {raw.get('Sid', index)}",
                )
            )
    return statements


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---- the decision


@dataclass(frozen=True)
class Finding:
    need: Need
    reason: str
    example: RecordedCall

    def __str__(self) -> str:
        return (
            f"{self.need.function}: {self.need.action} on {self.need.resource} "
            f"({self.reason}; recorded as {self.example.describe()})"
        )


def decide(need: Need, statements: Iterable[Statement]) -> str | None:
    """None when allowed; otherwise why not."""
    allowed = False
    for statement in statements:
        if not statement.matches(need.action, need.resource):
            continue
        if statement.effect == "Deny":
            return f"denied by {statement.where}"
        if not statement.conditional:
            allowed = True
    return None if allowed else "no statement of its role allows it"


@dataclass
class Report:
    template: str
    calls: int
    needs: dict[Need, RecordedCall] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    unexercised: dict[str, list[str]] = field(default_factory=dict)

    @property
    def functions(self) -> list[str]:
        return sorted({need.function for need in self.needs})

    @property
    def actions(self) -> list[str]:
        return sorted({need.action for need in self.needs})

    @property
    def pairs(self) -> set[tuple[str, str]]:
        return {(need.function, need.action) for need in self.needs}

    def problems(self) -> list[str]:
        """One line per unmapped operation, and per function, action and reason refused
        (a missing grant is refused on every object it would have reached)."""
        refused: dict[tuple[str, str, str], list[Finding]] = defaultdict(list)
        for finding in self.findings:
            refused[(finding.need.function, finding.need.action, finding.reason)].append(finding)
        lines = [
            str(found[0]) + (f", and on {len(found) - 1} more resource(s)" if len(found) > 1 else "")
            for found in refused.values()
        ]
        return [*dict.fromkeys(self.unmapped), *lines]

    def summary(self) -> str:
        verdict = (
            "all allowed by their roles"
            if not self.problems()
            else f"{len(self.findings)} not allowed, {len(self.unmapped)} unmapped"
        )
        lines = [
            f"IAM sufficiency against {self.template}: {len(self.functions)} functions made "
            f"{self.calls} AWS calls needing {len(self.actions)} distinct actions "
            f"({len(self.pairs)} function/action pairs, {len(self.needs)} distinct authorizations): {verdict}"
        ]
        for function in sorted(topology.FUNCTIONS):
            used = sorted(action for name, action in self.pairs if name == function)
            lines.append(f"  {function}: {', '.join(used) or 'no AWS call'}")
            if self.unexercised.get(function):
                lines.append(
                    f"    granted, not exercised by this run: {', '.join(self.unexercised[function])}"
                )
        return "\n".join(lines)


def check(calls: Iterable[RecordedCall], synthesized: Synthesized, local: LocalResources) -> Report:
    """Decide every recorded call against the roles of one synthesized template."""
    calls = list(calls)
    report = Report(template=synthesized.stack.stack_name, calls=len(calls))
    for call in calls:
        try:
            for need in needs(call, local):
                report.needs.setdefault(need, call)
        except Unmapped as unmapped:
            report.unmapped.append(str(unmapped))
    resolver = TemplateResolver(synthesized, local)
    by_function: dict[str, list[Statement]] = {}
    for need, example in sorted(report.needs.items()):
        if need.function not in topology.FUNCTIONS:
            report.findings.append(Finding(need, "no such function in the template", example))
            continue
        if need.function not in by_function:
            by_function[need.function] = role_statements(synthesized, need.function, resolver)
        reason = decide(need, by_function[need.function])
        if reason:
            report.findings.append(Finding(need, reason, example))
    used: dict[str, set[str]] = defaultdict(set)
    for function, action in report.pairs:
        used[function].add(action)
    for function in topology.FUNCTIONS:
        statements = by_function.get(function) or role_statements(synthesized, function, resolver)
        granted = {a for s in statements if s.effect == "Allow" and not s.not_action for a in s.actions}
        report.unexercised[function] = sorted(granted - used[function] - RUNTIME_ACTIONS)
    return report
