"""What the infra tests share: the synthesized stacks and how to look into them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Template
from constructs import IConstruct

from infra.constants import LIVE_ALIAS
from infra.stack import AgentFilesStack

# The other branch of every context option, as strings the way `-c key=value` passes them.
PROD_CONTEXT = {
    "stage": "prod",
    "publicUrls": "true",
    "jwtIssuer": "https://login.example.com/",
    "jwtAudience": "agentfiles-web,agentfiles-cli",
    "openaiSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:openai-key-AbCdEf",
    "openaiBaseUrl": "https://models.example.com/v1",
    "model": "gpt-test",
    "imageModel": "image-test",
    "vacuumScheduleMinutes": "15",
    "graceSeconds": "3600",
    "throttleBurst": "20",
    "throttleRate": "10",
    "logLevel": "debug",
    "logRetentionDays": "90",
    "alarmEmail": "ops@example.com",
    "corsOrigins": "https://app.example.com",
    "generateMaxConcurrency": "3",
    "models": "gpt-test,gpt-test-large",
    "imageModels": "image-test-hd",
    "storageQuotaBytes": "1073741824",
    "storageQuotaFiles": "500",
    "generationsPerMinute": "6",
    "attachmentBudgetBytes": "8388608",
    "modelCapabilities": '{"*": {"images": true, "files": false}, "gpt-test-large": {"maxImageSide": 1024}}',
    "snapStart": "true",
    "apiGatewayAccountRole": "false",
    "jwksUrl": "https://login.example.com/keys",
    "secretKmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "malwareUnscannable": "allow",
}


@dataclass(frozen=True)
class Synthesized:
    stack: AgentFilesStack
    template: Template
    data: dict[str, Any]
    path: Path

    def logical_id(self, construct: IConstruct) -> str:
        cfn = construct.node.default_child or construct
        stack = Stack.of(construct)
        return stack.resolve(stack.get_logical_id(cfn))  # type: ignore[arg-type]

    def resource(self, construct: IConstruct) -> dict[str, Any]:
        return self.data["Resources"][self.logical_id(construct)]

    def invokes(self, function_name: Any, name: str) -> bool:
        """Whether a rendered `FunctionName` (a function's Ref, or an alias's ARN taken
        apart into `<function>:live`) names what integrations invoke for function `name`."""
        functions = self.stack.functions
        target = self.logical_id(functions.entry_point(name))
        if not functions.snap_start(name):
            return function_name == {"Ref": target}
        return function_name == {"Ref": target} or (
            function_name["Fn::Join"][1][1] == f":{LIVE_ALIAS}" and {"Ref": target} in _values(function_name)
        )

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.data["Resources"].items() if value["Type"] == resource_type}

    def of_http_api(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """Resources of one type that belong to the HTTP API (the push API has its own)."""
        api_id = self.logical_id(self.stack.api.http_api)
        return {
            key: value
            for key, value in self.of_type(resource_type).items()
            if key == api_id or value["Properties"].get("ApiId") == {"Ref": api_id}
        }


@dataclass(frozen=True)
class Assembly:
    dev: Synthesized
    prod: Synthesized
    synth_error: str | None
    validation_report: dict[str, Any] | None


def _values(value: Any) -> list[Any]:
    """Every dict and value nested in an intrinsic function."""
    found = [value]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    for child in children:
        found.extend(_values(child))
    return found
