"""`agentfiles admin`: an operator's commands on one owner's limits, straight against
the table (no API route can change a quota, so no token can either).

- `agentfiles admin quota SUB [--bytes N|default] [--files N|default]`: set (or
  clear) the owner's storage quota, then show their usage;
- `agentfiles admin usage SUB [--days N]`: storage used and the quota in force, and
  the owner's latest days of replies, images and tokens;
- `agentfiles admin retention SUB [--days N|off|default]`: how long the owner's idle
  threads are kept (set, never, or the deployment's `THREAD_RETENTION_DAYS`);
- `agentfiles admin erase SUB [--status] [--wait SECONDS]`: erase the owner's account
  (the maintenance worker does it, as for `DELETE /account`) and follow its progress.

Against the local stack (default): its `GET /health` names moto's endpoint, the table
and the quota defaults the stack runs with. Against AWS, with `--stack NAME` and the
usual AWS credentials: the table is the stack's `TableName` output, and the defaults
are read from the environment of its API function (`ApiFunctionName` output), so the
quota shown is the one the API enforces.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from agentfiles_cli.client import ApiError, Client, Unreachable
from agentfiles_cli.commands import DEFAULT_URL, human_size

_SIZE = re.compile(r"^\s*(\d+)\s*(k|m|g|t)?i?b?\s*$", re.IGNORECASE)
_UNITS = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
# The local stack's function settings the admin commands need, by /health's names.
_LOCAL_LIMITS = {"storageQuotaBytes": "STORAGE_QUOTA_BYTES", "storageQuotaFiles": "STORAGE_QUOTA_FILES"}
# What the admin commands read of the deployment besides the table: the quota defaults.
_DEPLOYED_LIMITS = (
    "STORAGE_QUOTA_BYTES",
    "STORAGE_QUOTA_FILES",
    "GENERATIONS_PER_MINUTE",
    "THREAD_RETENTION_DAYS",
)


class AdminError(Exception):
    pass


def quota_value(text: str) -> int | str:
    """A number of bytes or files (`5GiB`, `500M`, `1000`), or `default`."""
    if text.strip().lower() == "default":
        return "default"
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (like 1000, 500MiB, 5GiB) or 'default'")
    return int(match.group(1)) * _UNITS[match.group(2).lower() if match.group(2) else None]


def local_environment(url: str) -> dict[str, str]:
    """The functions' environment of the local stack at `url`, from its /health."""
    health = Client(url, "admin").health()
    if "awsEndpoint" not in health:
        raise AdminError(f"{url} is not a local stack (its /health names no AWS endpoint); use --stack")
    environment = {
        "AWS_ENDPOINT_URL": health["awsEndpoint"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": health["region"],
        "AWS_REGION": health["region"],
        "TABLE_NAME": health["table"],
        "BUCKET_NAME": health["bucket"],
        "GENERATIONS_QUEUE_URL": health["queues"]["generations"],
        "GENERATIONS_DLQ_URL": health["deadLetterQueues"]["generations"],
        "MAINTENANCE_QUEUE_URL": health["queues"]["maintenance"],
    }
    settings = health.get("settings") or {}
    environment |= {
        variable: str(settings[key]) for key, variable in _LOCAL_LIMITS.items() if key in settings
    }
    return environment


def stack_environment(stack: str, region: str | None) -> dict[str, str]:
    """The deployed stack's table (its `TableName` output) and the settings its API
    function runs with (the function named by its `ApiFunctionName` output)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = boto3.session.Session(region_name=region)
    try:
        stacks = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if "TableName" not in outputs or "ApiFunctionName" not in outputs:
            raise AdminError(f"stack {stack} has no TableName or ApiFunctionName output: deploy this version")
        configuration = session.client("lambda").get_function_configuration(
            FunctionName=outputs["ApiFunctionName"]
        )
    except (BotoCoreError, ClientError) as error:
        raise AdminError(f"cannot read stack {stack}: {error}") from error
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    from agentfiles.settings import DEPLOYMENT_VARIABLES

    environment = {
        name: variables[name] for name in (*DEPLOYMENT_VARIABLES, *_DEPLOYED_LIMITS) if name in variables
    }
    environment["TABLE_NAME"] = outputs["TableName"]
    if session.region_name:
        environment["AWS_DEFAULT_REGION"] = session.region_name
    return environment


def _connect(args: argparse.Namespace) -> None:
    """Point this process's data layer at the chosen table, as a function would be."""
    environment = stack_environment(args.stack, args.region) if args.stack else local_environment(args.url)
    if not args.stack:
        # Only moto: no profile or endpoint of the user's own may take the calls elsewhere.
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
    os.environ.update(environment)
    from agentfiles.data import clients
    from agentfiles.settings import get_settings

    clients.reset()
    get_settings.cache_clear()


def _show(report: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.dump(), indent=2))
        return
    storage, overrides = report.storage, report.overrides
    bytes_from = "set for this owner" if overrides.bytes is not None else "default"
    files_from = "set for this owner" if overrides.files is not None else "default"
    print(f"{report.owner}")
    print(f"  storage  {human_size(storage.bytes)} of {human_size(storage.quota_bytes)} ({bytes_from})")
    print(f"  files    {storage.files} of {storage.quota_files} ({files_from})")
    if not report.days:
        print("  days     no replies or images yet")
    for day in report.days:
        print(
            f"  {day.day}  {day.replies} replies, {day.images} images, "
            f"{day.prompt_tokens} prompt + {day.completion_tokens} completion tokens"
        )


def cmd_quota(args: argparse.Namespace) -> int:
    if args.bytes is None and args.files is None:
        raise AdminError("give --bytes and/or --files (a number, or 'default' to clear the override)")
    _connect(args)
    from agentfiles.logic import usage

    _show(usage.set_quota(args.sub, quota_bytes=args.bytes, quota_files=args.files), args.json)
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    _connect(args)
    from agentfiles.logic import usage

    _show(usage.report(args.sub, days=args.days), args.json)
    return 0


def retention_days(text: str) -> int | str:
    """A number of days (at least 1), `off` (never) or `default`."""
    if text.strip().lower() in ("off", "default"):
        return text.strip().lower()
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1 or more), 'off' or 'default'")
    return int(text)


def cmd_retention(args: argparse.Namespace) -> int:
    _connect(args)
    from agentfiles.logic import retention

    report = retention.report(args.sub) if args.days is None else retention.set_retention(args.sub, args.days)
    if args.json:
        print(json.dumps(report.dump(), indent=2))
        return 0
    kept = f"{report.days} days after their last message" if report.days else "until deleted"
    source = "set for this owner" if report.source == "owner" else "default"
    print(f"{report.owner}")
    print(f"  threads  kept {kept} ({source})")
    if args.days is not None:
        print(f"  marked   {report.threads_marked} active thread(s) for the next scheduled run")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    _connect(args)
    from agentfiles.data import erasure_rows
    from agentfiles.logic import erasure
    from agentfiles.models.account import ErasureOut

    if args.status:
        record = erasure_rows.get_erasure(args.sub)
        if record is None:
            raise AdminError(f"{args.sub} has no erasure")
        out = ErasureOut.of(record)
    else:
        out = erasure.request_erasure(args.sub, requested_by="operator")
    deadline = time.monotonic() + args.wait
    while True:
        counts = out.counts
        line = (
            f"{args.sub}: erasure {out.status}{f' ({out.phase})' if out.phase else ''}, "
            f"{counts.threads} threads, {counts.thread_rows} thread rows, {counts.objects} objects, "
            f"{counts.rows} rows removed"
        )
        if not args.json:
            print(line, flush=True)
        if out.status == "done" or time.monotonic() >= deadline:
            break
        time.sleep(2)
        record = erasure_rows.get_erasure(args.sub)
        out = ErasureOut.of(record) if record else out
    if args.json:
        print(json.dumps(out.dump(), indent=2))
    return 0


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def guarded(args: argparse.Namespace) -> int:
        from agentfiles.data.errors import DataError
        from agentfiles.errors import AgentFilesError
        from agentfiles.settings import SettingsError

        try:
            return command(args)
        except (AdminError, ApiError, AgentFilesError, DataError, SettingsError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Unreachable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return guarded


def add_admin_commands(commands: argparse._SubParsersAction) -> None:
    admin = commands.add_parser(
        "admin",
        help="an operator's commands: one owner's quota, usage, retention and erasure",
        description="An operator's commands on one owner's limits, against the local stack's table "
        "or, with --stack, a deployed one.",
    )
    verbs = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")

    def add(name: str, command: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=help_, description=help_)
        parser.add_argument("sub", metavar="SUB", help="the owner (the JWT sub claim)")
        parser.add_argument(
            "--url",
            default=os.environ.get("AGENTFILES_URL", DEFAULT_URL),
            help="the local stack (default $AGENTFILES_URL or %(default)s)",
        )
        parser.add_argument(
            "--stack", help="a deployed stack's name (e.g. agentfiles-dev), with AWS credentials"
        )
        parser.add_argument(
            "--region", help="the deployed stack's region (default: your AWS configuration's)"
        )
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        parser.set_defaults(run=_run(command))
        return parser

    quota = add("quota", cmd_quota, "set an owner's storage quota (bytes, files), or clear it with 'default'")
    quota.add_argument("--bytes", type=quota_value, metavar="N", help="bytes: 1000, 500MiB, 5GiB, or default")
    quota.add_argument("--files", type=quota_value, metavar="N", help="files, or default")
    usage = add("usage", cmd_usage, "show an owner's storage, quota and latest days of generation")
    usage.add_argument("--days", type=int, default=7, help="how many days to show (default %(default)s)")
    erase = add("erase", cmd_erase, "erase an owner's account (every row and object) and follow it")
    erase.add_argument("--status", action="store_true", help="only show the erasure's progress")
    erase.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS", help="follow it this long (default: show once)"
    )
    kept = add("retention", cmd_retention, "show or set how long an owner's idle threads are kept")
    kept.add_argument(
        "--days",
        type=retention_days,
        metavar="N",
        help="days after a thread's last message, 'off' (never deleted) or 'default' (THREAD_RETENTION_DAYS)",
    )
