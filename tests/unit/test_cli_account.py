"""The command line against a deployed stack: its URLs from the stack's CloudFormation
outputs, a Cognito sign-in kept (and refreshed) in the user's config directory, and the
token each command sends. AWS is moto's CloudFormation and Cognito, in process."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from agentfiles_cli import account
from agentfiles_cli.cli import main

REGION = "eu-west-1"
PASSWORD = "a-Long-passw0rd!"


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("AGENTFILES_URL", "AGENTFILES_TOKEN", "AGENTFILES_WEBSOCKET_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    return tmp_path / "config" / "agentfiles"


@pytest.fixture
def deployed(config_home: Path) -> Iterator[dict[str, str]]:
    """A stack named agentfiles-dev whose outputs are the real stack's, with a user pool
    (USER_PASSWORD_AUTH allowed, as infra/api.py configures it) and one invited user."""
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name=REGION)
        pool = cognito.create_user_pool(PoolName="agentfiles-dev")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool,
            ClientName="cli",
            ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool, Username="me@example.com", MessageAction="SUPPRESS")
        cognito.admin_set_user_password(
            UserPoolId=pool, Username="me@example.com", Password=PASSWORD, Permanent=True
        )
        outputs = {
            "ApiUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/",
            "WebSocketUrl": "wss://def456.execute-api.eu-west-1.amazonaws.com/live",
            "UserPoolId": pool,
            "UserPoolClientId": client_id,
        }
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()},
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="agentfiles-dev", TemplateBody=json.dumps(template)
        )
        yield outputs


def test_config_from_stack_saves_the_api_and_websocket_urls_and_the_user_pool(deployed, config_home, capsys):
    # When the stack is configured by name
    assert main(["config", "--from-stack", "agentfiles-dev", "--region", REGION]) == 0

    # Then its outputs are saved in the user's config directory
    saved = json.loads((config_home / "config.json").read_text())
    assert saved["url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com"
    assert saved["websocket_url"] == deployed["WebSocketUrl"]
    assert saved["user_pool_id"] == deployed["UserPoolId"]
    assert saved["client_id"] == deployed["UserPoolClientId"]
    assert saved["region"] == REGION
    # And commands now go there, with the stack's socket
    target = account.resolve(None, None, "http://127.0.0.1:8000")
    assert (target.url, target.websocket_url) == (saved["url"], deployed["WebSocketUrl"])


def test_config_from_a_stack_that_is_not_there_fails_with_a_message(deployed, capsys):
    assert main(["config", "--from-stack", "agentfiles-nope", "--region", REGION]) == 1
    assert "cannot read stack agentfiles-nope" in capsys.readouterr().err


def test_login_keeps_a_refreshable_token_only_its_owner_can_read(deployed, config_home, monkeypatch):
    # Given the configured stack
    assert main(["config", "--from-stack", "agentfiles-dev", "--region", REGION]) == 0
    # When the user logs in with the password on stdin
    monkeypatch.setattr("sys.stdin", _Stdin(PASSWORD + "\n"))
    assert main(["login", "--username", "me@example.com", "--password-stdin"]) == 0

    # Then the tokens are kept, with the refresh token, readable by the user alone
    stored = config_home / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    credentials = account.Credentials.load()
    assert credentials is not None and credentials.refresh_token and credentials.username == "me@example.com"
    # And a command against the stack sends that access token
    target = account.resolve(None, None, "http://127.0.0.1:8000")
    assert target.token == credentials.access_token


def test_an_expiring_login_is_refreshed_before_it_is_sent(deployed, config_home, monkeypatch):
    # Given a login whose access token is about to expire
    main(["config", "--from-stack", "agentfiles-dev", "--region", REGION])
    monkeypatch.setattr("sys.stdin", _Stdin(PASSWORD + "\n"))
    main(["login", "--username", "me@example.com", "--password-stdin"])
    old = account.Credentials.load()
    assert old is not None
    old.expires_at = 0
    old.save()

    # When a command resolves its token
    target = account.resolve(None, None, "http://127.0.0.1:8000")

    # Then it got a new one through the refresh token, and kept it
    renewed = account.Credentials.load()
    assert renewed is not None and renewed.expires_at > 0
    assert target.token == renewed.access_token
    assert renewed.refresh_token == old.refresh_token


def test_a_wrong_password_is_refused_and_nothing_is_stored(deployed, config_home, monkeypatch, capsys):
    main(["config", "--from-stack", "agentfiles-dev", "--region", REGION])
    monkeypatch.setattr("sys.stdin", _Stdin("wrong\n"))
    assert main(["login", "--username", "me@example.com", "--password-stdin"]) == 1
    assert "sign-in refused" in capsys.readouterr().err
    assert not (config_home / "credentials.json").exists()


def test_a_given_token_wins_over_the_environment_and_the_stored_login(config_home, monkeypatch):
    account.StackConfig(url="https://api.example.com").save()
    monkeypatch.setenv("AGENTFILES_TOKEN", "from-env")
    assert account.resolve(None, "given", "http://127.0.0.1:8000").token == "given"
    assert account.resolve(None, None, "http://127.0.0.1:8000").token == "from-env"
    # And another URL than the configured stack's is not sent the stored login
    monkeypatch.delenv("AGENTFILES_TOKEN")
    local = account.resolve("http://127.0.0.1:8000", None, "http://127.0.0.1:8000")
    assert (local.url, local.token, local.websocket_url) == ("http://127.0.0.1:8000", None, None)


class _Stdin:
    def __init__(self, text: str):
        self._lines = iter(text.splitlines(keepends=True))

    def readline(self) -> str:
        return next(self._lines, "")
