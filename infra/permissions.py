"""What each function may do, in one table that the stack grants and the IAM tests
check the synthesized roles against.

Resources are named by what they are (`table`, `objects`, `queue:generations`, ...),
not by ARN: the stack resolves them to its resources' ARNs, the tests to their
logical ids. Consuming a queue is granted by the event source mapping and is not
listed here; neither are the function's own log group and X-Ray writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentfiles import topology


@dataclass(frozen=True)
class Grant:
    actions: tuple[str, ...]
    resources: tuple[str, ...]


TABLE = "table"
INDEXES = tuple(f"index:{index.name}" for index in topology.INDEXES)
OBJECTS = "objects"
# What is made from files (`derived/...`): only the upload check writes there.
DERIVED_OBJECTS = "derived_objects"
BUCKET = "bucket"
SECRET = "secret"
# PostToConnection on the WebSocket API's stage: frames pushed to clients.
CONNECTIONS = "connections"
PUSH = Grant(("execute-api:ManageConnections",), (CONNECTIONS,))
# DeleteConnection on the same stage: an erased account's sockets are closed.
CLOSE_CONNECTIONS = "close_connections"


def queue(name: str) -> str:
    return f"queue:{name}"


def dlq(name: str) -> str:
    return f"dlq:{name}"


# Every table write in a TransactWriteItems is authorised by its item's own action
# (PutItem, UpdateItem, DeleteItem, ConditionCheckItem).
PERMISSIONS: dict[str, tuple[Grant, ...]] = {
    "api": (
        Grant(
            (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                # A deleted reply's stream goes in batches.
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
            ),
            (TABLE,),
        ),
        # Presigned PUT and GET URLs carry the signer's permissions; bytes stored at once
        # are tagged as checked in the same PUT.
        Grant(("s3:PutObject", "s3:PutObjectTagging", "s3:GetObject", "s3:DeleteObject"), (OBJECTS,)),
        Grant(("sqs:SendMessage",), (queue("generations"), queue("maintenance"))),
        # New messages and stopped replies are pushed to the thread's followers.
        PUSH,
    ),
    "upload_trigger": (
        Grant(
            (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                # The owner's open connections, told that an upload was settled; a gone
                # one is forgotten (its rows deleted).
                "dynamodb:Query",
                "dynamodb:BatchWriteItem",
            ),
            (TABLE,),
        ),
        PUSH,
        # GetObject also covers HEAD; DeleteObject removes rejected uploads; accepted ones
        # are tagged as checked (keeping the malware scan's tag: GetObjectTagging).
        Grant(("s3:GetObject", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObject"), (OBJECTS,)),
        # What it makes from a file (a document's text) is stored beside it, under derived/.
        Grant(("s3:PutObject",), (DERIVED_OBJECTS,)),
        # Without it S3 answers HEAD of a missing key with 403, which would look like a
        # permission problem instead of an object deleted meanwhile. Keys begin with the
        # owner, so no prefix narrows it; the role already reads every object, and
        # listing adds only their names.
        Grant(("s3:ListBucket",), (BUCKET,)),
    ),
    "generate": (
        Grant(
            (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                "dynamodb:ConditionCheckItem",
                # A follower whose connection is gone is forgotten (its rows deleted).
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            ),
            (TABLE,),
        ),
        Grant(("s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"), (OBJECTS,)),
        # Backoff for retryable model errors: the message's visibility is extended.
        Grant(("sqs:ChangeMessageVisibility",), (queue("generations"),)),
        Grant(("sqs:SendMessage",), (dlq("generations"),)),
        Grant(("secretsmanager:GetSecretValue",), (SECRET,)),
        # Every delta and status change is pushed to the thread's followers.
        PUSH,
    ),
    "maintenance": (
        Grant(
            (
                "dynamodb:GetItem",
                # An erasure's row: its progress after each page, then its audit record.
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                "dynamodb:ConditionCheckItem",
                "dynamodb:BatchWriteItem",
            ),
            (TABLE,),
        ),
        # A long thread is removed in pages; the next page is a new message.
        Grant(("sqs:SendMessage",), (queue("maintenance"),)),
        # A deleted thread's followers are told; an erased account's sockets get a last
        # frame and are closed.
        PUSH,
        Grant(("execute-api:ManageConnections",), (CLOSE_CONNECTIONS,)),
        # An erased account's objects: listed under its prefixes, deleted in pages. An
        # export reads the owner's originals and writes its ZIP (a multipart upload) and
        # its progress beside it.
        Grant(("s3:DeleteObject", "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"), (OBJECTS,)),
        Grant(("s3:ListBucket",), (BUCKET,)),
    ),
    "vacuum": (
        Grant(("dynamodb:Query",), (TABLE, *INDEXES)),
        Grant(
            (
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                # A reply given up on has its stream sealed; gone followers are forgotten.
                "dynamodb:PutItem",
                "dynamodb:BatchWriteItem",
            ),
            (TABLE,),
        ),
        Grant(("s3:DeleteObject",), (OBJECTS,)),
        # Stuck work found by the sweep is sent again.
        Grant(("sqs:SendMessage",), (queue("generations"), queue("maintenance"))),
        # A reply the sweep fails is pushed as it ends.
        PUSH,
    ),
    "websocket": (
        Grant(
            (
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            ),
            (TABLE,),
        ),
    ),
    # Checks tokens against the issuer's public keys: no AWS resource at all.
    "websocket_authorizer": (),
}
