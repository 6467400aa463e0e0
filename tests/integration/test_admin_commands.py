"""`agentfiles admin --stack NAME` against a deployed stack, here a CloudFormation stack
and a Lambda function on moto: the table comes from the stack's outputs, the quota
defaults from the API function's environment."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from agentfiles.data import clients
from agentfiles_cli.cli import main


def _deployed(aws, function_environment: dict[str, str]) -> None:
    """A stack named agentfiles-test with the outputs the real one has, and its API
    function configured with `function_environment`."""
    iam = clients.session().client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName="api-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    clients.session().client("lambda", region_name="us-east-1").create_function(
        FunctionName="agentfiles-test-api",
        Runtime="python3.12",
        Role=role,
        Handler="handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
        Environment={"Variables": function_environment},
    )
    template = {
        "Resources": {"Alarms": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "TableName": {"Value": aws.resources.table_name},
            "ApiFunctionName": {"Value": "agentfiles-test-api"},
        },
    }
    clients.session().client("cloudformation", region_name="us-east-1").create_stack(
        StackName="agentfiles-test", TemplateBody=json.dumps(template)
    )


@pytest.fixture
def deployed(aws):
    # The deployment runs with a default quota of 5000 bytes.
    _deployed(aws, {**aws.resources.function_environment(), "STORAGE_QUOTA_BYTES": "5000"})
    return aws


def test_usage_shows_the_quota_the_deployed_api_enforces(deployed, capsys):
    # Given a deployed API whose default quota is 5000 bytes / When an operator looks at alice
    code = main(["admin", "usage", "alice", "--stack", "agentfiles-test", "--region", "us-east-1", "--json"])
    # Then the quota shown is the deployment's, not this machine's default
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["storage"] == {"bytes": 0, "files": 0, "quotaBytes": 5000, "quotaFiles": 10000}
    assert report["overrides"] == {"quotaBytes": None, "quotaFiles": None}


def test_quota_sets_the_owners_override_in_the_deployed_table(deployed, capsys):
    # When an operator gives alice 2 GiB and 50 files
    code = main(["admin", "quota", "alice", "--bytes", "2GiB", "--files", "50", "--stack", "agentfiles-test"])
    # Then her usage row holds them, and the report says they are hers
    assert code == 0
    assert "of 2.0 GiB (set for this owner)" in capsys.readouterr().out
    row = deployed.dynamodb.get_item(
        TableName=deployed.resources.table_name, Key={"pk": {"S": "OWNER#alice"}, "sk": {"S": "USAGE"}}
    )["Item"]
    assert row["quotaBytes"] == {"N": str(2 * 1024**3)} and row["quotaFiles"] == {"N": "50"}


def test_a_stack_that_does_not_exist_is_a_clear_error(aws, capsys):
    code = main(["admin", "usage", "alice", "--stack", "agentfiles-nowhere"])
    assert code == 1
    assert "cannot read stack agentfiles-nowhere" in capsys.readouterr().err


def test_retention_is_set_for_one_owner_against_the_deployed_default(aws, capsys):
    # Given a deployed API whose default retention is 30 days, and alice's thread
    _deployed(aws, {**aws.resources.function_environment(), "THREAD_RETENTION_DAYS": "30"})
    aws.new_thread("alice")
    stack = ["--stack", "agentfiles-test", "--region", "us-east-1", "--json"]
    # When an operator looks, then sets 7 days for her
    assert main(["admin", "retention", "alice", *stack]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert main(["admin", "retention", "alice", "--days", "7", *stack]) == 0
    set_ = json.loads(capsys.readouterr().out)
    # Then she had the deployment's default, and now her own, applied to her thread
    assert (shown["days"], shown["source"]) == (30, "default")
    assert (set_["days"], set_["source"], set_["threadsMarked"]) == (7, "owner", 1)
    # And 'off' keeps her threads for good
    assert main(["admin", "retention", "alice", "--days", "off", *stack]) == 0
    assert json.loads(capsys.readouterr().out)["days"] is None


def test_retention_refuses_a_number_of_days_below_one(capsys):
    with pytest.raises(SystemExit):
        main(["admin", "retention", "alice", "--days", "0"])
    assert "number of days" in capsys.readouterr().err


def test_an_operator_erases_an_account_and_follows_it_to_the_end(aws, capsys, monkeypatch):
    # Given a deployed stack, and alice's thread
    _deployed(aws, aws.resources.function_environment())
    aws.new_thread("alice")
    stack = ["--stack", "agentfiles-test", "--region", "us-east-1", "--json"]
    # When an operator erases her account
    capsys.readouterr()
    assert main(["admin", "erase", "alice", *stack]) == 0
    started = json.loads(capsys.readouterr().out)
    # Then it is pending, and her writes are refused
    assert started["status"] == "pending"
    assert aws.call_api("POST", "/threads", sub="alice", json_body={}).status == 409
    # When the maintenance worker has run it, past its settling time
    monkeypatch.setenv("ERASURE_SETTLE_SECONDS", "0")
    from agentfiles.settings import get_settings

    get_settings.cache_clear()
    assert aws.deliver("maintenance") == {"batchItemFailures": []}
    # Then its status says done, with what went
    capsys.readouterr()
    assert main(["admin", "erase", "alice", "--status", *stack]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["status"] == "done" and done["counts"]["threads"] == 1
