"""cdk-nag (AwsSolutions) and cfn-lint over the synthesized templates."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs

from tests.infra.synthesis import Assembly, Synthesized

# Every finding the stack accepts, with where it is explained (the reason travels with
# the acknowledgment in infra/). A new one must be added here on purpose.
ACCEPTED_FINDINGS = {
    r"AwsSolutions-IAM5\[Resource::<StorageFiles\w+\.Arn>/\*\]",  # objects under server-made keys
    r"AwsSolutions-IAM5\[Resource::<StorageFiles\w+\.Arn>/derived/\*\]",  # what is made from them
    r"AwsSolutions-IAM5\[Resource::\*\]",  # X-Ray's two actions cannot be scoped
    # PostToConnection for any connection of the push API's stage (ids are API Gateway's)
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
    r"<PushWebSocketApi\w+>/live/POST/@connections/\*\]",
    # DeleteConnection for any connection of that stage: an erased account's sockets
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
    r"<PushWebSocketApi\w+>/live/DELETE/@connections/\*\]",
    r"AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole\]",
    # API Gateway's account-wide logging role, with the policy AWS documents for it
    r"AwsSolutions-IAM4\[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    r"AmazonAPIGatewayPushToCloudWatchLogs\]",
    # GuardDuty's own managed rule for the protected bucket (its name's suffix is GuardDuty's)
    r"AwsSolutions-IAM5\[Resource::arn:<AWS::Partition>:events:<AWS::Region>:<AWS::AccountId>:"
    r"rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3\*\]",
    r"AwsSolutions-L1",  # Python 3.13: the newest runtime the build compiles bytecode for
    r"AwsSolutions-SMG4",  # the provider's API key is rotated at the provider
    r"AwsSolutions-COG2",  # MFA offered, not forced
    r"AwsSolutions-COG8",  # Cognito Plus plan is the operator's cost decision
    r"AwsSolutions-APIG4",  # /health, /openapi.json, /docs are public by design
    r"AwsSolutions-SQS3",  # the schedule's DLQ and the vacuum's on-failure queue are dead letters
    r"AwsSolutions-CFR1",  # no geo restriction
    r"AwsSolutions-CFR2",  # no WAF on read-only objects
    r"AwsSolutions-CFR4",  # default certificate's TLS policy
}
# CDK makes each function depend on its role explicitly as well as through GetAtt; harmless.
ACCEPTED_LINT_WARNINGS = {"W3005"}
LINT_REGIONS = ["us-east-1", "eu-west-1"]


def test_given_both_stacks_when_cdk_nag_runs_then_no_finding_is_left_unacknowledged(
    assembly: Assembly,
) -> None:
    # Given the app with AwsSolutionsChecks / When it was synthesized
    # Then synthesis was not stopped by a finding
    assert assembly.synth_error is None, assembly.synth_error
    report = assembly.validation_report
    assert report is not None
    (nag,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]
    # And no error or warning is open
    assert nag["conclusion"] == "success"
    assert nag.get("violations", []) == []


def test_given_acknowledged_findings_when_read_then_each_has_a_reason_and_is_on_the_accepted_list(
    assembly: Assembly,
) -> None:
    # Given what cdk-nag reports as acknowledged
    report = assembly.validation_report
    assert report is not None
    acknowledged = [
        finding for plugin in report["pluginReports"] for finding in plugin.get("suppressedViolations", [])
    ]
    assert acknowledged

    for finding in acknowledged:
        rule = finding["ruleName"]
        # Then each carries a real reason
        assert len(finding["reason"].strip()) >= 40, rule
        # And is one the team accepted on purpose
        assert any(re.fullmatch(pattern, rule) for pattern in ACCEPTED_FINDINGS), rule


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_given_a_synthesized_template_when_cfn_lint_runs_then_there_are_no_errors(
    assembly: Assembly, stage: str, tmp_path: Path
) -> None:
    # Given the template, written on its own
    synthesized: Synthesized = getattr(assembly, stage)
    template = tmp_path / f"{stage}.template.json"
    shutil.copy(synthesized.path, template)

    # When cfn-lint checks it for the regions we deploy to
    matches = lint_file(template, config=ManualArgs(regions=LINT_REGIONS))

    # Then there is no error, and no warning but the accepted ones
    findings = [f"{match.rule.id} {match.message} ({match.path})" for match in matches]
    errors = [finding for finding in findings if finding.startswith("E")]
    assert errors == []
    unexpected = [
        finding
        for finding in findings
        if not finding.startswith("I") and finding.split()[0] not in ACCEPTED_LINT_WARNINGS
    ]
    assert unexpected == []
