"""IAM sufficiency: every AWS call a function makes is allowed by its role in the
synthesized template, so a missing grant fails here instead of as AccessDenied after a
deploy.

A local stack of its own records every call of every function (`AGENTFILES_RECORD_AWS_CALLS`)
while one run drives each path once: uploads (presigned, rejected, small, and one the
malware scan finds infected, with the local stack's emulated scanner), a message with
text, image and PDF parts answered as a stream, a model rate limit and its retry, a job that
is not a job (parked in the DLQ), image generation, catch-up, a reply waiting behind
another that the sweep sends again, stop, a WebSocket client, message, file and thread
deletes, a thread deleted by retention, an erased account, and a vacuum that deletes.
Each call is then mapped to the IAM authorizations it needs and decided against the dev and prod templates
(`tests/support/iam.py`). The model key is read from Secrets Manager, as on AWS.

`.venv/bin/pytest tests/infra/test_iam_sufficiency.py -rP` prints the summary.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from websockets.sync.client import ClientConnection, connect

from agentfiles import topology
from agentfiles_local.events import schedule_event
from agentfiles_local.fake_model import FakeModel
from agentfiles_local.runtime.aws_calls import VARIABLE
from agentfiles_local.runtime.scanner import EICAR
from harness import samples
from tests.e2e.local_stack import LocalStackProcess, wait_for
from tests.infra.synthesis import Synthesized
from tests.support.iam import LocalResources, RecordedCall, check, needs, read_calls

SECRET_NAME = "agentfiles-model-key"
ENDED = ("success", "failed", "stopped")


@dataclass(frozen=True)
class Recording:
    calls: list[RecordedCall]
    local: LocalResources


# ---- the run


class Client:
    """One user of the stack, with a WebSocket following one thread."""

    def __init__(self, stack: LocalStackProcess, sub: str) -> None:
        self.stack = stack
        self.sub = sub
        self.token = stack.token(sub)
        self.socket: ClientConnection | None = None

    def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> requests.Response:
        return self.stack.api(method, path, self.token, json=json, **kwargs)

    @contextmanager
    def following(self, thread: str) -> Iterator[None]:
        """Connected over the WebSocket and subscribed to a thread, until the block ends."""
        with connect(f"{self.stack.health['websocketUrl']}/?token={self.token}", open_timeout=10) as socket:
            socket.send(json.dumps({"action": "subscribe", "threadId": thread}))
            assert json.loads(socket.recv(timeout=10))["type"] == "subscribed"
            self.socket = socket
            try:
                yield
            finally:
                self.socket = None

    def connection_rows(self) -> list[dict[str, Any]]:
        return self.stack.aws("dynamodb").query(
            TableName=self.stack.health["table"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :conn)",
            ExpressionAttributeValues={":pk": {"S": f"OWNER#{self.sub}"}, ":conn": {"S": "CONN#"}},
        )["Items"]

    def frames_until_ended(self, reply_id: str) -> list[dict]:
        """Pushed frames until the reply ends."""
        assert self.socket is not None
        frames: list[dict[str, Any]] = []
        while True:
            frame = json.loads(self.socket.recv(timeout=45))
            frames.append(frame)
            message = frame.get("message") or {}
            if frame["type"] == "message" and message.get("id") == reply_id and message["status"] in ENDED:
                return frames

    def first_delta(self, reply_id: str) -> dict[str, Any]:
        """Pushed frames until the reply's first delta (the others are let go)."""
        assert self.socket is not None
        while True:
            frame = json.loads(self.socket.recv(timeout=45))
            if frame["type"] == "delta" and frame["messageId"] == reply_id:
                return dict(frame)

    def ask(self, thread: str, content: Any) -> str:
        saved = self.api("POST", f"/threads/{thread}/messages", {"content": content})
        assert saved.status_code == 201, saved.text
        return str(saved.json()["reply"]["id"])


def _drive(stack: LocalStackProcess, model: FakeModel) -> None:
    """Every path once, each checked just enough to know it ran."""
    user = Client(stack, f"iam-{uuid.uuid4().hex[:8]}")
    # Uploads: presigned and checked ready, presigned and rejected, small and stored at once
    picture = stack.upload(user.token, samples.png(32, 24), "image/png", filename="photo.png")
    report = stack.upload(user.token, samples.pdf(pages=2), "application/pdf", filename="report.pdf")
    fake_png = stack.upload(user.token, b"plain text, not a picture", "image/png", filename="fake.png")
    assert user.api("GET", f"/files/{fake_png}").json()["file"]["status"] == "rejected"
    stored = user.api(
        "POST",
        "/files",
        {"filename": "notes.txt", "mediaType": "text/plain", "data": base64.b64encode(b"notes").decode()},
    )
    assert stored.status_code == 201, stored.text
    small = stored.json()["file"]["id"]
    # Stored at once, and ready once the (emulated) malware scanner passed it too
    wait_for(
        lambda: user.api("GET", f"/files/{small}").json()["file"]["status"] == "ready",
        what="the small file's malware scan",
    )
    assert user.api("GET", f"/files/{picture}").json()["file"]["url"]
    # An infected upload: the scan rejects it, deletes it and remembers its hash
    infected = stack.upload(user.token, EICAR, "text/plain", filename="eicar.txt")
    assert user.api("GET", f"/files/{infected}").json()["file"]["rejection"]["code"] == "malware"

    # A conversation in a thread followed over the WebSocket, then the client leaves
    thread = user.api("POST", "/threads", {}).json()["thread"]["id"]
    with user.following(thread):
        _converse(stack, model, user, thread, {"picture": picture, "report": report, "small": small})
    wait_for(lambda: not user.connection_rows(), what="the connection's rows to go")

    # Retention: a thread idle past THREAD_RETENTION_DAYS goes in the scheduled run
    idle = user.api("POST", "/threads", {}).json()["thread"]["id"]
    said = user.api(
        "POST", f"/threads/{idle}/messages", {"content": "old", "fileIds": [picture], "generate": False}
    )
    assert said.status_code == 201, said.text
    _age_thread(stack, user.sub, idle, days=2)
    assert _run_vacuum(stack)["retention"]["threadsExpired"] == 1
    wait_for(
        lambda: user.api("GET", f"/files/{picture}").json()["file"]["refcount"] == 0, what="retention's purge"
    )

    # Export: the account as one ZIP, announced on the socket, served by a presigned URL
    _export_the_account(stack, user)

    # Erasure: another user's account, with a file, a thread and an open socket, goes whole
    _erase_an_account(stack)

    # The vacuum deletes what nothing references any more, once its grace is over
    def vacuumed() -> bool:
        _run_vacuum(stack)
        return user.api("GET", f"/files/{picture}").status_code == 404

    wait_for(vacuumed, interval=0.5, what="the vacuum to delete the released picture")


def _export_the_account(stack: LocalStackProcess, user: Client) -> None:
    thread = user.api("POST", "/threads", {}).json()["thread"]["id"]
    with user.following(thread):
        asked = user.api("POST", "/exports")
        assert asked.status_code == 202, asked.text
        assert user.socket is not None
        frame = json.loads(user.socket.recv(timeout=60))
        assert frame["type"] == "export" and frame["export"]["status"] == "ready", frame
    export = user.api("GET", f"/exports/{asked.json()['export']['id']}").json()["export"]
    archive = requests.get(export["url"], timeout=30)
    assert archive.status_code == 200 and archive.content[:2] == b"PK", archive.text[:200]


def _erase_an_account(stack: LocalStackProcess) -> None:
    """DELETE /account: the socket gets its last frame and is closed, and the worker
    removes every row and object of the owner."""
    leaving = Client(stack, f"iam-{uuid.uuid4().hex[:8]}")
    photo = stack.upload(leaving.token, samples.png(16, 16), "image/png", filename="me.png")
    thread = leaving.api("POST", "/threads", {}).json()["thread"]["id"]
    said = leaving.api(
        "POST", f"/threads/{thread}/messages", {"content": "bye", "fileIds": [photo], "generate": False}
    )
    assert said.status_code == 201, said.text
    with leaving.following(thread):
        assert leaving.api("DELETE", "/account").status_code == 202
        assert leaving.socket is not None
        assert json.loads(leaving.socket.recv(timeout=30)) == {"type": "account_erased"}
    wait_for(
        lambda: leaving.api("GET", "/account").json()["account"]["erasure"]["status"] == "done",
        timeout=60,
        what="the account's erasure",
    )


def _age_thread(stack: LocalStackProcess, owner: str, thread: str, days: int) -> None:
    """The thread was last written `days` ago (as its saves would have left it)."""
    from agentfiles.models.common import iso_from_ms, now_ms

    at = now_ms() - days * 24 * 3600 * 1000
    stack.aws("dynamodb").update_item(
        TableName=stack.health["table"],
        Key={"pk": {"S": f"OWNER#{owner}"}, "sk": {"S": f"THREAD#{thread}"}},
        UpdateExpression="SET updatedAt = :iso, sweepAt = :at",
        ExpressionAttributeValues={":iso": {"S": iso_from_ms(at)}, ":at": {"N": str(at)}},
    )


def _run_vacuum(stack: LocalStackProcess) -> dict[str, Any]:
    """One scheduled run of the vacuum (and its sweep), as EventBridge starts it."""
    result: dict[str, Any] = requests.post(
        f"{stack.base_url}/dev/invoke/vacuum", json=schedule_event(), timeout=30
    ).json()
    assert "vacuum" in result and "sweep" in result, result
    return result


def _converse(
    stack: LocalStackProcess, model: FakeModel, user: Client, thread: str, files: dict[str, str]
) -> None:
    """A question about an image and a PDF, streamed; catch-up; a retried rate limit; a job
    that is no job; an image; a stopped reply; then the deletes."""
    parts = [
        {"type": "text", "text": "what are these? [[words:40]]"},
        {"type": "image", "fileId": files["picture"]},
        {"type": "file", "fileId": files["report"]},
    ]
    reply = user.ask(thread, parts)
    frames = user.frames_until_ended(reply)
    assert frames[-1]["message"]["status"] == "success" and any(f["type"] == "delta" for f in frames)
    caught_up = user.api("GET", f"/threads/{thread}/messages/{reply}/stream", params={"after": 0}).json()
    assert caught_up["deltas"] and caught_up["lastSeq"] == frames[-1]["message"]["lastSeq"]
    assert user.api("GET", f"/threads/{thread}/messages").status_code == 200

    # A rate limit, then the retry answers
    model.fail_next(429)
    retried = user.ask(thread, "once more")
    assert user.frames_until_ended(retried)[-1]["message"]["status"] == "success"

    # A body on the generations queue that is no job: parked in its DLQ
    sqs = stack.aws("sqs")
    sqs.send_message(QueueUrl=stack.health["queues"]["generations"], MessageBody="not a job")
    dlq = stack.health["deadLetterQueues"]["generations"]
    wait_for(
        lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages"),
        what="the body in the generations DLQ",
    )

    # Image generation, and a reply stopped while it streams
    drawn = user.api("POST", f"/threads/{thread}/images", {"prompt": "a lighthouse", "size": "256x256"})
    assert drawn.status_code == 202, drawn.text
    drawing = user.frames_until_ended(drawn.json()["reply"]["id"])[-1]["message"]
    assert drawing["status"] == "success", drawing
    generated = drawing["content"][0]["fileId"]
    # A file deleted by its owner (before a vacuum run below would take it, unreferenced)
    assert user.api("DELETE", f"/files/{files['small']}").status_code == 204
    long_reply = user.ask(thread, "ramble [[words:3000]] [[delay_ms:10]]")
    user.first_delta(long_reply)
    # The sweep: a reply left pending past its sweep time (generate's one instance is
    # busy with the long one) has its job sent again; the streaming one is deferred
    waiting = user.ask(thread, "and this, after it")

    def resent() -> bool:
        return _run_vacuum(stack)["sweep"]["repliesResent"] > 0

    wait_for(resent, interval=0.5, what="the sweep to send the waiting reply's job again")
    stopped = user.api("POST", f"/threads/{thread}/messages/{long_reply}/stop")
    assert stopped.status_code == 202, stopped.text
    assert user.frames_until_ended(long_reply)[-1]["message"]["status"] == "stopped"
    assert user.frames_until_ended(waiting)[-1]["message"]["status"] == "success"

    # Deletes: the first question (its files released) and its streamed reply, then the
    # thread (its messages in the background)
    question = user.api("GET", f"/threads/{thread}/messages", params={"limit": 100}).json()["items"][-1]
    for message in (question["id"], reply):
        assert user.api("DELETE", f"/threads/{thread}/messages/{message}").status_code == 204
    assert user.api("DELETE", f"/threads/{thread}").status_code == 202
    wait_for(
        lambda: user.api("GET", f"/files/{generated}").json()["file"]["refcount"] == 0,
        what="the thread's messages to release the generated picture",
    )


def _local_resources(stack: LocalStackProcess, secret_arn: str) -> LocalResources:
    sqs = stack.aws("sqs")
    queues = {}
    for kind, urls in (("queue", stack.health["queues"]), ("dlq", stack.health["deadLetterQueues"])):
        for name, url in urls.items():
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            queues[f"{kind}:{name}"] = (url, arn)
    return LocalResources(
        region=stack.health["region"],
        account=secret_arn.split(":")[4],
        table=stack.health["table"],
        bucket=stack.health["bucket"],
        queues=queues,
        secret_name=SECRET_NAME,
        secret_arn=secret_arn,
        callback_url=stack.health["websocketCallbackUrl"],
    )


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """One recorded run on a stack of its own: presigned URLs as deployed, the model key
    in Secrets Manager, a one-second grace, and the vacuum run by the test, not a schedule."""
    directory = tmp_path_factory.mktemp("aws-calls")
    with FakeModel(host="127.0.0.1", port=0) as model:
        stack = LocalStackProcess.start(
            {
                VARIABLE: str(directory),
                "OPENAI_BASE_URL": model.url,
                "OPENAI_API_KEY_SECRET_ARN": SECRET_NAME,
                "URL_MODE": "presigned",
                "GRACE_SECONDS": "1",
                "VACUUM_INTERVAL_SECONDS": "3600",
                # A pending reply is due for the sweep after a second, and generate runs
                # one reply at a time, so that a reply can wait behind another.
                "PENDING_REPLY_SWEEP_SECONDS": "1",
                "LOCAL_CONCURRENCY": "1",
                "THREAD_RETENTION_DAYS": "1",
                "ERASURE_SETTLE_SECONDS": "1",
            }
        )
        # The presigned URLs the model is given point at the stack's moto: its one origin.
        model.fetch_from = (stack.health["awsEndpoint"],)
        try:
            secret_arn = stack.aws("secretsmanager").create_secret(
                Name=SECRET_NAME, SecretString="local-key"
            )["ARN"]
            local = _local_resources(stack, secret_arn)
            try:
                _drive(stack, model)
            except Exception as error:
                raise AssertionError(
                    f"the recorded run failed; the stack said:\n{stack.output(8000)}"
                ) from error
        finally:
            code = stack.stop()
        assert code == 0, f"the stack did not stop cleanly:\n{stack.output(8000)}"
    return Recording(read_calls(directory), local)


@pytest.mark.e2e
@pytest.mark.xdist_group("iam")
def test_given_an_end_to_end_run_when_its_calls_are_checked_then_every_role_allows_every_call(
    recording: Recording, any_stack: Synthesized
) -> None:
    # Given every AWS call each function made on the local stack
    # When each is decided against its function's role in the synthesized template
    report = check(recording.calls, any_stack, recording.local)
    print(report.summary())

    # Then every call maps to known IAM actions, and every one is allowed
    problems = report.problems()
    assert not problems, "\n".join(problems)
    # And the run reached every function that has AWS resources to use (the authorizer has none)
    assert set(report.functions) == set(topology.FUNCTIONS) - {"websocket_authorizer"}
    # And the presigned URLs were recorded as the calls they sign
    assert {(c.function, c.operation) for c in recording.calls if c.presigned} >= {
        ("api", "PutObject"),
        ("api", "GetObject"),
    }


# ---- the check itself can fail


def _local() -> LocalResources:
    """Local resources as `agentfiles serve` names them, without a running stack."""
    account, region, host = "123456789012", "us-east-1", "http://127.0.0.1:4566"
    queues = {}
    for spec in topology.QUEUES.values():
        queues[f"queue:{spec.name}"] = (
            f"{host}/{account}/{spec.name}",
            f"arn:aws:sqs:{region}:{account}:{spec.name}",
        )
        queues[f"dlq:{spec.name}"] = (
            f"{host}/{account}/{spec.dlq_name}",
            f"arn:aws:sqs:{region}:{account}:{spec.dlq_name}",
        )
    return LocalResources(
        region=region,
        account=account,
        table="agentfiles",
        bucket="agentfiles-files",
        queues=queues,
        secret_name=SECRET_NAME,
        secret_arn=f"arn:aws:secretsmanager:{region}:{account}:secret:{SECRET_NAME}-AbCdEf",
        callback_url="http://127.0.0.1:9001/live",
    )


def _call(function: str, service: str, operation: str, params: dict[str, Any], **extra: Any) -> RecordedCall:
    signing = {"apigatewaymanagementapi": "execute-api"}.get(service, service)
    return RecordedCall(
        function=function,
        service=service,
        signing_name=signing,
        operation=operation,
        http_method=extra.pop("http_method", "POST"),
        presigned=extra.pop("presigned", False),
        params=params,
        url=extra.pop("url", None),
    )


def _without_statement(synthesized: Synthesized, function: str, action: str) -> Synthesized:
    """A copy of the template whose role for `function` lost the statements granting `action`."""
    data = copy.deepcopy(synthesized.data)
    role_id = synthesized.logical_id(synthesized.stack.functions[function].role)
    for resource in data["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [
                s
                for s in document["Statement"]
                if action not in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            ]
    return replace(synthesized, data=data)


def test_given_a_template_without_the_secret_grant_when_generate_reads_the_key_then_it_is_reported(dev):
    # Given generate's role without its GetSecretValue statement, and generate reading the key
    local = _local()
    template = _without_statement(dev, "generate", "secretsmanager:GetSecretValue")
    call = _call("generate", "secretsmanager", "GetSecretValue", {"SecretId": SECRET_NAME})

    # When checked against the full template and against the copy
    allowed, refused = check([call], dev, local), check([call], template, local)

    # Then the full template allows it, and the copy is reported with function, action and resource
    assert allowed.problems() == []
    assert refused.problems() == [
        f"generate: secretsmanager:GetSecretValue on {local.secret_arn} "
        "(no statement of its role allows it; recorded as secretsmanager.GetSecretValue)"
    ]


@pytest.mark.parametrize(
    ("call", "action", "resource"),
    [
        # The vacuum never stores bytes
        (
            _call(
                "vacuum", "s3", "PutObject", {"Bucket": "agentfiles-files", "Key": "o/f"}, http_method="PUT"
            ),
            "s3:PutObject",
            "arn:aws:s3:::agentfiles-files/o/f",
        ),
        # A presigned GET carries the signer's rights: the vacuum has no s3:GetObject
        (
            _call(
                "vacuum",
                "s3",
                "GetObject",
                {"Bucket": "agentfiles-files", "Key": "o/f"},
                http_method="GET",
                presigned=True,
            ),
            "s3:GetObject",
            "arn:aws:s3:::agentfiles-files/o/f",
        ),
        # The API may Query the table, but not its indexes
        (
            _call("api", "dynamodb", "Query", {"TableName": "agentfiles", "IndexName": "gcIndex"}),
            "dynamodb:Query",
            "arn:aws:dynamodb:us-east-1:123456789012:table/agentfiles/index/gcIndex",
        ),
        # One item of a transaction the role does not cover is enough
        (
            _call(
                "upload_trigger",
                "dynamodb",
                "TransactWriteItems",
                {
                    "TransactItems": [
                        {"Update": {"TableName": "agentfiles"}},
                        {"ConditionCheck": {"TableName": "agentfiles"}},
                    ]
                },
            ),
            "dynamodb:ConditionCheckItem",
            "arn:aws:dynamodb:us-east-1:123456789012:table/agentfiles",
        ),
        # The trigger may tag an object but not write one: the put alone is reported
        (
            _call(
                "upload_trigger",
                "s3",
                "PutObject",
                {"Bucket": "agentfiles-files", "Key": "o/f", "Tagging": True},
                http_method="PUT",
            ),
            "s3:PutObject",
            "arn:aws:s3:::agentfiles-files/o/f",
        ),
        # The WebSocket function pushes nothing
        (
            _call(
                "websocket",
                "apigatewaymanagementapi",
                "PostToConnection",
                {"ConnectionId": "abc="},
                url="http://127.0.0.1:9001/live/@connections/abc%3D",
            ),
            "execute-api:ManageConnections",
            "arn:aws:execute-api:us-east-1:123456789012:local-push-api/live/POST/@connections/abc=",
        ),
        # A queue the role may not send to
        (
            _call(
                "api",
                "sqs",
                "SendMessage",
                {"QueueUrl": "http://127.0.0.1:4566/123456789012/generations-dlq"},
            ),
            "sqs:SendMessage",
            "arn:aws:sqs:us-east-1:123456789012:generations-dlq",
        ),
    ],
    ids=[
        "put-by-vacuum",
        "presigned-get-by-vacuum",
        "index-query-by-api",
        "transact-item",
        "tagged-put",
        "push",
        "dlq",
    ],
)
def test_given_a_call_the_role_does_not_grant_when_checked_then_it_is_reported(
    any_stack, call, action, resource
):
    # Given a call its function's role does not allow / When checked
    report = check([call], any_stack, _local())

    # Then it is reported with the function, the action and the resource
    assert [(f.need.function, f.need.action, f.need.resource) for f in report.findings] == [
        (call.function, action, resource)
    ]


def test_given_the_calls_functions_really_make_when_checked_then_their_roles_allow_them(any_stack):
    # Given calls the functions make, mapped as IAM authorizes them
    local = _local()
    calls = [
        # HEAD is authorized as GetObject; a listing acts on the bucket, not an object
        _call(
            "upload_trigger",
            "s3",
            "HeadObject",
            {"Bucket": "agentfiles-files", "Key": "o/f"},
            http_method="HEAD",
        ),
        _call("upload_trigger", "s3", "ListObjectsV2", {"Bucket": "agentfiles-files"}, http_method="GET"),
        _call("vacuum", "dynamodb", "Query", {"TableName": "agentfiles", "IndexName": "gcIndex"}),
        _call(
            "api",
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "agentfiles"}},
                    {"ConditionCheck": {"TableName": "agentfiles"}},
                ]
            },
        ),
        _call("api", "dynamodb", "BatchGetItem", {"RequestItems": {"agentfiles": []}}),
        _call(
            "generate",
            "sqs",
            "SendMessage",
            {"QueueUrl": "http://127.0.0.1:4566/123456789012/generations-dlq"},
        ),
        _call(
            "generate",
            "apigatewaymanagementapi",
            "PostToConnection",
            {"ConnectionId": "abc="},
            url="http://127.0.0.1:9001/live/@connections/abc%3D",
        ),
        _call("generate", "secretsmanager", "GetSecretValue", {"SecretId": SECRET_NAME}),
    ]

    # When checked against either template / Then every one is allowed
    assert check(calls, any_stack, local).problems() == []
    # And each maps to the action IAM checks
    assert [n.action for call in calls[:2] for n in needs(call, local)] == ["s3:GetObject", "s3:ListBucket"]


def test_given_a_deny_statement_when_it_matches_then_it_wins_over_the_allow(dev):
    # Given the API's role with an added Deny on its objects
    data = copy.deepcopy(dev.data)
    role_id = dev.logical_id(dev.stack.functions["api"].role)
    policy = next(
        r
        for r in data["Resources"].values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
    )
    bucket = dev.logical_id(dev.stack.storage.bucket)
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {
            "Effect": "Deny",
            "Action": "s3:Delete*",
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]},
        }
    )
    call = _call(
        "api", "s3", "DeleteObject", {"Bucket": "agentfiles-files", "Key": "o/f"}, http_method="DELETE"
    )

    # When checked / Then the deny decides
    [finding] = check([call], replace(dev, data=data), _local()).findings
    assert finding.reason.startswith("denied by ")


def test_given_a_call_whose_action_is_not_mapped_when_checked_then_it_is_reported_not_guessed(dev):
    call = _call("api", "s3", "CopyObject", {"Bucket": "agentfiles-files", "Key": "o/f"}, http_method="PUT")
    assert check([call], dev, _local()).unmapped == [
        "api called s3.CopyObject: its IAM action is not mapped in tests.support.iam"
    ]


def test_given_recording_on_when_a_client_calls_and_presigns_then_each_is_one_line(tmp_path: Path):
    """The recorder, on a session of its own against moto in this process."""
    import boto3
    from botocore.config import Config
    from moto import mock_aws

    from agentfiles_local.runtime import aws_calls

    with mock_aws():
        session = boto3.session.Session(
            aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1"
        )
        aws_calls.install("api", tmp_path, session)
        s3 = session.client("s3", config=Config(signature_version="s3v4"))
        s3.create_bucket(Bucket="agentfiles-files")
        s3.put_object(Bucket="agentfiles-files", Key="o/f", Body=b"x", Tagging="checked=true")
        s3.generate_presigned_url("get_object", Params={"Bucket": "agentfiles-files", "Key": "o/f"})
    calls = read_calls(tmp_path)
    assert [(c.function, c.operation, c.presigned, dict(c.params)) for c in calls] == [
        ("api", "CreateBucket", False, {"Bucket": "agentfiles-files"}),
        ("api", "PutObject", False, {"Bucket": "agentfiles-files", "Key": "o/f", "Tagging": True}),
        ("api", "GetObject", True, {"Bucket": "agentfiles-files", "Key": "o/f"}),
    ]


def test_given_recording_on_when_the_data_layer_makes_any_of_its_clients_then_its_calls_are_recorded(
    monkeypatch, tmp_path: Path
):
    """Every cached client factory of `agentfiles.data.clients` (found by what it is, so a
    new one is covered too) makes its clients from the hooked session."""
    from agentfiles.data import clients
    from agentfiles_local.runtime import aws_calls

    factories = {
        name: factory
        for name, factory in vars(clients).items()
        if hasattr(factory, "cache_clear") and factory.__module__ == clients.__name__ and name != "session"
    }
    monkeypatch.setenv(VARIABLE, str(tmp_path))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clients.session.cache_clear()
    try:
        # Given an instance started with recording on
        assert aws_calls.install_from_environment("api") is not None
        # When each factory's client sends a call (the event botocore emits as it sends)
        for factory in factories.values():
            client = factory()
            model = client.meta.service_model.operation_model(client.meta.service_model.operation_names[0])
            client.meta.events.emit(
                f"before-call.{client.meta.service_model.service_id.hyphenize()}.{model.name}",
                model=model,
                params={"url": "http://127.0.0.1:9/"},
                context={},
            )
    finally:
        clients.session.cache_clear()
        clients.reset()
    # Then each one was recorded
    services = {call.service for call in read_calls(tmp_path)}
    assert len(services) == len(factories) >= 5, (services, sorted(factories))


def test_given_no_recording_variable_when_an_instance_starts_then_nothing_is_hooked(monkeypatch):
    from agentfiles_local.runtime import aws_calls

    monkeypatch.delenv(VARIABLE, raising=False)
    assert aws_calls.install_from_environment("api") is None
