"""cdk-nag and checkov acknowledgments: each names one finding and says why it is accepted."""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from constructs import IConstruct

PACK = "AwsSolutions"
CHECKOV = "checkov"


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Accept one finding (`AwsSolutions-S1`, `AwsSolutions-IAM5[Resource::*]`) on
    `scope` and everything under it."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{finding}", reason=reason))


def arn_wildcard_finding(resource: IConstruct, suffix: str) -> str:
    """The IAM5 finding id for `<resource ARN><suffix>`, as cdk-nag spells it.

    cdk-nag v3 acknowledges each wildcard resource on its own, by the logical id of
    the resource it widens, so the id is computed rather than written out.
    """
    cfn = resource.node.default_child
    assert isinstance(cfn, CfnResource), f"{resource.node.path} has no CloudFormation resource"
    stack = Stack.of(resource)
    logical_id = stack.resolve(stack.get_logical_id(cfn))
    return f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>{suffix}]"


def skip_checkov(scope: IConstruct, check: str, reason: str, *, resource_type: str | None = None) -> None:
    """Accept one checkov finding (`CKV_AWS_117`) on every CloudFormation resource under
    `scope` (of `resource_type` only, when given), as the template metadata checkov reads:
    `Metadata: {checkov: {skip: [{id, comment}]}}`."""
    for construct in scope.node.find_all():
        if not isinstance(construct, CfnResource):
            continue
        if resource_type is not None and construct.cfn_resource_type != resource_type:
            continue
        metadata: dict[str, Any] = construct.get_metadata(CHECKOV) or {}
        skips = [skip for skip in metadata.get("skip", []) if skip["id"] != check]
        construct.add_metadata(CHECKOV, {"skip": [*skips, {"id": check, "comment": reason}]})


def arn_wildcard_finding_of_join(scope: IConstruct, arn: str) -> str:
    """The IAM5 finding id for an ARN built with `Stack.format_arn` (a join of pseudo
    parameters, references and text), as cdk-nag spells it: `<Ref>`, `<Id.Attr>`."""
    resolved = Stack.of(scope).resolve(arn)
    parts = resolved["Fn::Join"][1] if isinstance(resolved, dict) else [resolved]

    def spelled(part: object) -> str:
        if isinstance(part, dict) and "Ref" in part:
            return f"<{part['Ref']}>"
        if isinstance(part, dict) and "Fn::GetAtt" in part:
            return f"<{'.'.join(part['Fn::GetAtt'])}>"
        return str(part)

    return f"AwsSolutions-IAM5[Resource::{''.join(spelled(p) for p in parts)}]"
