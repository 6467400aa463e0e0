"""Where the command line points and who it acts as, against a deployed stack.

- `agentfiles config --from-stack NAME [--region R]` reads the stack's CloudFormation
  outputs (`ApiUrl`, `WebSocketUrl`, `UserPoolId`, `UserPoolClientId`) into the
  user's config file, `$XDG_CONFIG_HOME/agentfiles/config.json` (`~/.config/...`).
- `agentfiles login [--username U] [--password-stdin]` signs in to that stack's Cognito
  user pool (its app client allows `USER_PASSWORD_AUTH`) and keeps the tokens, the
  refresh token included, in `credentials.json` beside it (mode 0600); an access token
  about to expire is refreshed (`REFRESH_TOKEN_AUTH`) before a command uses it.
- `agentfiles logout` forgets them.

What a command uses, first found wins: the API `--url`, `$AGENTFILES_URL`, the config
file's, the local stack; the token `--token`, `$AGENTFILES_TOKEN`, the stored login
(when the URL is the configured stack's), the local stack's `/dev/token` for `--sub`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# A token this close to its expiry is refreshed before it is sent.
REFRESH_MARGIN_SECONDS = 120


class AccountError(Exception):
    pass


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentfiles"


@dataclass
class StackConfig:
    url: str
    websocket_url: str | None = None
    region: str | None = None
    user_pool_id: str | None = None
    client_id: str | None = None
    stack: str | None = None

    @classmethod
    def load(cls) -> StackConfig | None:
        path = config_dir() / "config.json"
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})

    def save(self) -> Path:
        path = config_dir() / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


@dataclass
class Credentials:
    access_token: str
    refresh_token: str
    expires_at: float
    username: str

    @staticmethod
    def path() -> Path:
        return config_dir() / "credentials.json"

    @classmethod
    def load(cls) -> Credentials | None:
        path = cls.path()
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))

    def save(self) -> None:
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # The refresh token is a password for 30 days: only its owner may read it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(asdict(self), file, indent=2)
        os.chmod(path, 0o600)


def stack_outputs(stack: str, region: str | None) -> tuple[dict[str, str], str | None]:
    """The stack's outputs by key, and the region it was read in."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region)
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        raise AccountError(f"cannot read stack {stack}: {error}") from error
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    return outputs, session.region_name


def configure_from_stack(stack: str, region: str | None) -> StackConfig:
    outputs, region = stack_outputs(stack, region)
    if "ApiUrl" not in outputs:
        raise AccountError(f"stack {stack} has no ApiUrl output: is it an agentfiles stack?")
    config = StackConfig(
        url=outputs["ApiUrl"].rstrip("/"),
        websocket_url=outputs.get("WebSocketUrl"),
        region=region,
        user_pool_id=outputs.get("UserPoolId"),
        client_id=outputs.get("UserPoolClientId"),
        stack=stack,
    )
    config.save()
    return config


def _cognito(region: str | None) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    # Signing in needs no AWS credentials: the user's own name and password are the proof.
    return boto3.session.Session(region_name=region).client(
        "cognito-idp", config=Config(signature_version=UNSIGNED)
    )


def _credentials(result: dict[str, Any], username: str, refresh_token: str | None = None) -> Credentials:
    return Credentials(
        access_token=result["AccessToken"],
        refresh_token=result.get("RefreshToken") or refresh_token or "",
        expires_at=time.time() + int(result.get("ExpiresIn", 3600)),
        username=username,
    )


def login(config: StackConfig, username: str, password: str) -> Credentials:
    from botocore.exceptions import BotoCoreError, ClientError

    if not config.client_id:
        raise AccountError(
            "the configured stack has no Cognito user pool (it uses an external issuer): "
            "get a token from that issuer and pass it with --token or AGENTFILES_TOKEN"
        )
    try:
        answer = _cognito(config.region).initiate_auth(
            ClientId=config.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    except ClientError as error:
        raise AccountError(f"sign-in refused: {error.response['Error'].get('Message', error)}") from error
    except BotoCoreError as error:
        raise AccountError(f"cannot reach Cognito: {error}") from error
    if "AuthenticationResult" not in answer:
        raise AccountError(
            f"Cognito asks for {answer.get('ChallengeName')}: finish it once in the hosted UI "
            "or with `aws cognito-idp admin-set-user-password --permanent`, then log in again"
        )
    credentials = _credentials(answer["AuthenticationResult"], username)
    credentials.save()
    return credentials


def fresh_token(config: StackConfig, credentials: Credentials) -> str:
    """The stored access token, refreshed first when it is about to expire."""
    from botocore.exceptions import BotoCoreError, ClientError

    if credentials.expires_at - REFRESH_MARGIN_SECONDS > time.time():
        return credentials.access_token
    if not credentials.refresh_token or not config.client_id:
        raise AccountError("the stored login has expired: run `agentfiles login` again")
    try:
        answer = _cognito(config.region).initiate_auth(
            ClientId=config.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": credentials.refresh_token},
        )
    except (BotoCoreError, ClientError) as error:
        raise AccountError(
            f"the stored login could not be refreshed ({error}): run `agentfiles login`"
        ) from error
    refreshed = _credentials(answer["AuthenticationResult"], credentials.username, credentials.refresh_token)
    refreshed.save()
    return refreshed.access_token


@dataclass
class Target:
    """Where a command goes and with what token (None: the local stack's /dev/token)."""

    url: str
    token: str | None
    websocket_url: str | None


def resolve(url: str | None, token: str | None, default_url: str) -> Target:
    config = StackConfig.load()
    url = url or os.environ.get("AGENTFILES_URL") or (config.url if config else None) or default_url
    same_stack = config is not None and config.url.rstrip("/") == url.rstrip("/")
    websocket_url = os.environ.get("AGENTFILES_WEBSOCKET_URL") or (
        config.websocket_url if same_stack and config else None
    )
    token = token or os.environ.get("AGENTFILES_TOKEN")
    if token is None and same_stack and config is not None:
        credentials = Credentials.load()
        if credentials is not None:
            token = fresh_token(config, credentials)
    return Target(url=url.rstrip("/"), token=token, websocket_url=websocket_url)


# ---- commands ------------------------------------------------------------------


def cmd_config(args: argparse.Namespace) -> int:
    if args.from_stack:
        config = configure_from_stack(args.from_stack, args.region)
        print(f"saved {config_dir() / 'config.json'}", file=sys.stderr)
    else:
        config = StackConfig.load()
        if config is None:
            print("no stack configured: agentfiles config --from-stack NAME", file=sys.stderr)
            return 1
    print(json.dumps(asdict(config), indent=2))
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    config = StackConfig.load()
    if config is None:
        raise AccountError("no stack configured: run `agentfiles config --from-stack NAME` first")
    username = args.username or input("Username (e-mail): ").strip()
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    credentials = login(config, username, password)
    left = int(credentials.expires_at - time.time())
    print(
        f"signed in to {config.stack or config.url} as {username}"
        f" (token valid {left // 60} min, refreshed as needed)"
    )
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    Credentials.path().unlink(missing_ok=True)
    print("signed out", file=sys.stderr)
    return 0


def _guarded(command: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except AccountError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return run


def add_account_commands(commands: argparse._SubParsersAction) -> None:
    config = commands.add_parser(
        "config",
        help="point the command line at a deployed stack (its CloudFormation outputs)",
        description="Save the deployed stack's API URL, WebSocket URL and user pool "
        f"(from its outputs; needs cloudformation:DescribeStacks) to {config_dir()}/config.json, "
        "or show what is saved.",
    )
    config.add_argument("--from-stack", metavar="NAME", help="the stack, e.g. agentfiles-dev")
    config.add_argument("--region", help="its region (default: your AWS configuration's)")
    config.set_defaults(run=_guarded(cmd_config))
    login_ = commands.add_parser(
        "login",
        help="sign in to the configured stack's user pool; the token is kept and refreshed",
        description="Sign in with USER_PASSWORD_AUTH to the configured stack's Cognito user pool. "
        f"The tokens are kept in {config_dir()}/credentials.json (mode 0600).",
    )
    login_.add_argument("--username", help="your user name (the e-mail you were invited with)")
    login_.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login_.set_defaults(run=_guarded(cmd_login))
    logout = commands.add_parser("logout", help="forget the stored login")
    logout.set_defaults(run=_guarded(cmd_logout))
