"""A record of the AWS calls each function makes, for checking them against its IAM role.

Off by default. With `AGENTFILES_RECORD_AWS_CALLS=<directory>` in the stack's
environment, every function instance hooks botocore's events on the data layer's
session (`agentfiles.data.clients.session()`, from which every client a function uses
is made) before it imports its handler, and appends one JSON line per call to
`<directory>/<function>-<pid>.jsonl`:

    {"function": "api", "service": "s3", "signingName": "s3", "operation": "PutObject",
     "httpMethod": "PUT", "presigned": true, "params": {"Bucket": "...", "Key": "..."},
     "url": null}

- A call is recorded once, when it is sent (`before-call`: retries are not new calls),
  with the parameters that name its resources (`identify`), not its data.
- A presigned URL sends nothing, but whoever uses it acts with the signer's
  permissions: `generate_presigned_url` is recorded too, as the call it signs, with
  `"presigned": true` (from `before-parameter-build`, the one event presigning emits).
- `url` is where the call went (without its query), which names the API and stage of
  an `@connections` call.

When the variable is unset, nothing is imported or registered: an instance pays one
environment lookup.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

VARIABLE = "AGENTFILES_RECORD_AWS_CALLS"

# Parameters that name the resource a call acts on (or, like Tagging, change what it needs).
_NAMES = (
    "Bucket",
    "Key",
    "VersionId",
    "Prefix",
    "TableName",
    "IndexName",
    "QueueUrl",
    "SecretId",
    "ConnectionId",
)
_FLAGS = ("Tagging",)
# Where a call's parameters wait between `before-parameter-build` and `before-call`.
_PENDING = "agentfiles_local.aws_calls"


def install_from_environment(function: str) -> AwsCallRecorder | None:
    """Record this process's calls if the environment asks for it."""
    directory = os.environ.get(VARIABLE)
    if not directory:
        return None
    from agentfiles.data import clients

    return install(function, Path(directory), clients.session())


def install(function: str, directory: Path, session: Any) -> AwsCallRecorder:
    """Hook a boto3 session: every client made from it afterwards records its calls."""
    from agentfiles.data import clients

    directory.mkdir(parents=True, exist_ok=True)
    recorder = AwsCallRecorder(function, directory / f"{function}-{os.getpid()}.jsonl")
    session.events.register("before-parameter-build", recorder.on_parameters)
    session.events.register("before-call", recorder.on_call)
    # A client copies the session's handlers when it is made: none may predate the hooks.
    clients.reset()
    return recorder


def identify(params: dict[str, Any]) -> dict[str, Any]:
    """What of a call's parameters names its resources: names and keys, never data."""
    found: dict[str, Any] = {name: params[name] for name in _NAMES if name in params}
    found.update({flag: True for flag in _FLAGS if flag in params})
    if "TransactItems" in params:
        found["TransactItems"] = [
            {kind: {"TableName": body.get("TableName")} for kind, body in item.items()}
            for item in params["TransactItems"]
        ]
    if "RequestItems" in params:
        found["RequestItems"] = {
            table: sorted({kind for request in requests for kind in request})
            if isinstance(requests, list)
            else []
            for table, requests in params["RequestItems"].items()
        }
    objects = params.get("Delete", {}).get("Objects") if isinstance(params.get("Delete"), dict) else None
    if objects:
        found["Keys"] = [item.get("Key") for item in objects]
    return found


class AwsCallRecorder:
    """The two botocore handlers, and the file they append to."""

    def __init__(self, function: str, path: Path) -> None:
        self.function = function
        self.path = path
        self._lock = threading.Lock()

    def on_parameters(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if context.get("is_presign_request"):
            self._write(model, identify(params), presigned=True, url=None)
        else:
            context[_PENDING] = identify(params)

    def on_call(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        url = str(params.get("url") or "").split("?", 1)[0] or None
        self._write(model, context.pop(_PENDING, {}), presigned=False, url=url)

    def _write(self, model: Any, params: dict[str, Any], *, presigned: bool, url: str | None) -> None:
        line = json.dumps(
            {
                "function": self.function,
                "service": model.service_model.service_name,
                "signingName": model.service_model.signing_name,
                "operation": model.name,
                "httpMethod": model.http.get("method"),
                "presigned": presigned,
                "params": params,
                "url": url,
            },
            default=str,
        )
        with self._lock, self.path.open("a", encoding="utf-8") as sink:
            sink.write(line + "\n")
