"""Threads: create, list, read, delete in the background."""

from __future__ import annotations

from harness import samples


def test_a_thread_is_created_read_and_listed_newest_first(aws):
    # Given three threads
    ids = [aws.new_thread(title=f"t{n}") for n in range(3)]
    # When listed two at a time
    first = aws.call_api("GET", "/threads", query={"limit": "2"}).body
    second = aws.call_api("GET", "/threads", query={"limit": "2", "cursor": first["nextCursor"]}).body
    # Then they come newest first, each once
    assert [t["id"] for t in first["items"] + second["items"]] == list(reversed(ids))
    one = aws.call_api("GET", f"/threads/{ids[0]}").body["thread"]
    assert one["title"] == "t0" and one["status"] == "active"


def test_a_thread_without_a_body_is_created(aws):
    from agentfiles_local.events import LambdaContext, http_api_event
    from functions.api.handler import lambda_handler

    response = lambda_handler(
        http_api_event("POST", "/threads", claims={"sub": "alice"}), LambdaContext("api", 29)
    )
    assert response["statusCode"] == 201


def test_another_owners_thread_is_not_found(aws):
    thread = aws.new_thread()
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/messages")):
        reply = aws.call_api(method, f"/threads/{thread}{path}", sub="bob")
        assert reply.status == 404, (method, path)
    saved = aws.call_api("POST", f"/threads/{thread}/messages", sub="bob", json_body={"content": "hi"})
    assert saved.status == 404 and saved.body["error"]["code"] == "thread_not_found"
    assert aws.call_api("GET", "/threads", sub="bob").body["items"] == []


def test_an_invalid_thread_id_is_a_typed_4xx(aws):
    reply = aws.call_api("GET", "/threads/not-a-ulid")
    assert reply.status == 422 and reply.body["error"]["code"] == "validation_error"


def test_deleting_a_thread_removes_its_messages_in_the_background_and_releases_their_files(aws):
    # Given a thread whose messages reference a file
    file = aws.small_file(samples.png(), "image/png")
    thread = aws.new_thread()
    for text in ("one", "two"):
        reply = aws.call_api(
            "POST",
            f"/threads/{thread}/messages",
            json_body={
                "content": [{"type": "text", "text": text}, {"type": "image", "fileId": file["id"]}],
                "generate": False,
            },
            headers={"idempotency-key": text},
        )
        assert reply.status == 201
    assert aws.refcount("alice", file["id"]) == 2
    # When the thread is deleted
    assert aws.call_api("DELETE", f"/threads/{thread}").status == 202
    # Then it is gone for the client at once
    assert aws.call_api("GET", f"/threads/{thread}").status == 404
    assert aws.call_api("GET", "/threads").body["items"] == []
    # And once the background job ran, its rows are gone and the references released
    assert aws.run_maintenance() == {"batchItemFailures": []}
    rows = aws.dynamodb.query(
        TableName=aws.resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"OWNER#alice#THREAD#{thread}"}},
    )["Items"]
    assert rows == []
    assert aws.refcount("alice", file["id"]) == 0
    assert "gcShard" in aws.file_row("alice", file["id"])
    assert aws.call_api("DELETE", f"/threads/{thread}").status == 404


def test_deleting_a_thread_twice_is_accepted_and_cleans_up_once(aws):
    file = aws.small_file(samples.png(), "image/png")
    thread = aws.new_thread()
    aws.call_api(
        "POST",
        f"/threads/{thread}/messages",
        json_body={"content": "x", "fileIds": [file["id"]], "generate": False},
    )
    assert aws.call_api("DELETE", f"/threads/{thread}").status == 202
    assert aws.call_api("DELETE", f"/threads/{thread}").status == 202
    aws.run_maintenance()
    assert aws.refcount("alice", file["id"]) == 0


def test_a_thread_with_many_messages_is_removed_in_pages(aws):
    # Given a thread with more messages than one page, all referencing files
    files = [aws.small_file(f"file {n}".encode(), "text/plain")["id"] for n in range(3)]
    thread = aws.new_thread()
    for n in range(60):
        reply = aws.call_api(
            "POST",
            f"/threads/{thread}/messages",
            json_body={"content": f"m{n}", "fileIds": files[: 1 + n % 3], "generate": False},
        )
        assert reply.status == 201
    # When it is deleted and the job runs
    aws.call_api("DELETE", f"/threads/{thread}")
    aws.run_maintenance()
    # Then every count is back to zero
    assert [aws.refcount("alice", f) for f in files] == [0, 0, 0]


def test_saving_into_a_thread_being_deleted_is_refused(aws):
    thread = aws.new_thread()
    aws.call_api("DELETE", f"/threads/{thread}")
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "late"})
    assert reply.status == 404 and reply.body["error"]["code"] == "thread_not_found"
