"""The OpenAPI document is the API's contract: valid, complete, served without auth."""

from __future__ import annotations

from openapi_spec_validator import validate

from infra.constants import API_ROUTES


def test_the_openapi_document_is_valid_and_lists_every_route(aws):
    # When the schema is fetched without a token
    reply = aws.call_api("GET", "/openapi.json", sub=None)
    # Then it is a valid OpenAPI 3.1 document
    assert reply.status == 200
    validate(reply.body)
    # And it documents every private route of the contract, with the errors each can answer
    documented = {f"{method.upper()} {path}" for path, item in reply.body["paths"].items() for method in item}
    assert documented == {r.key for r in API_ROUTES if not r.public} | {"GET /health"}
    for path, item in reply.body["paths"].items():
        for method, operation in item.items():
            assert operation["summary"], (method, path)
            if path != "/health":
                assert "401" in operation["responses"], (method, path)
    # And /health is public: no token asked for
    assert reply.body["paths"]["/health"]["get"]["security"] == []
    assert "ErrorBody" in reply.body["components"]["schemas"]
    # And it says how to authenticate, so Swagger UI's "Authorize" takes a token
    bearer = reply.body["components"]["securitySchemes"]["bearer"]
    assert {key: bearer[key] for key in ("type", "scheme", "bearerFormat")} == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    # And its Authorize dialog says where a token comes from, on AWS and locally
    assert "POST /dev/token" in bearer["description"] and "Cognito" in bearer["description"]
    assert reply.body["security"] == [{"bearer": []}]


def test_the_docs_page_is_served_offline_without_a_token(aws):
    reply = aws.call_api("GET", "/docs", sub=None)
    assert reply.status == 200
    assert "<html" in reply.body.lower() and "swagger" in reply.body.lower()
    # Swagger UI is inlined: the page needs no CDN.
    assert "cdn.jsdelivr" not in reply.body and "unpkg.com" not in reply.body
    # And the schema link the page shows answers with the schema
    linked = aws.call_api("GET", "/docs", sub=None, query={"format": "json"})
    assert linked.status == 200 and linked.body["openapi"].startswith("3.")


def test_health_answers_without_a_token(aws):
    reply = aws.call_api("GET", "/health", sub=None)
    assert reply.status == 200 and reply.body == {"status": "ok"}


def test_an_unknown_route_is_a_typed_404(aws):
    reply = aws.call_api("GET", "/nope")
    assert reply.status == 404 and reply.body["error"]["code"] == "route_not_found"


def test_the_document_declares_what_each_route_really_answers(aws):
    # Given the served document
    document = aws.call_api("GET", "/openapi.json", sub=None).body
    schemas = document["components"]["schemas"]
    for path, item in document["paths"].items():
        if path == "/health":
            continue  # public and without input: no 401 and no 422 to declare
        for method, operation in item.items():
            responses = operation["responses"]
            # Then a 401 is the JWT authorizer's own body, not the error envelope
            unauthorized = responses["401"]["content"]["application/json"]["schema"]
            assert unauthorized == {"$ref": "#/components/schemas/AuthorizerRefusal"}, (method, path)
            # And a validation failure is the error envelope the function sends
            invalid = responses["422"]["content"]["application/json"]["schema"]
            assert invalid == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
            # And every route declares its success, with a body schema unless it has none
            successes = {code for code in responses if code.startswith("2")}
            assert successes, (method, path)
            if method == "get":
                assert responses["200"]["content"]["application/json"]["schema"], path
            # And a route that reads a body says what it answers to one that is not JSON
            if "requestBody" in operation:
                assert {"400", "415"} <= set(responses), (method, path)
    assert schemas["AuthorizerRefusal"]["required"] == ["message"]
    assert schemas["AuthorizerRefusal"]["properties"]["message"]["const"] == "Unauthorized"


def test_created_resources_link_to_the_operations_that_take_their_ids(aws):
    # Given the served document
    document = aws.call_api("GET", "/openapi.json", sub=None).body
    paths = document["paths"]

    def targets(path: str, method: str, status: str) -> dict[str, str]:
        links = paths[path][method]["responses"][status]["links"]
        found = {}
        for name, link in links.items():
            pointer = link["operationRef"].removeprefix("#/paths/")
            target_path, target_method = pointer.rsplit("/", 1)
            target_path = target_path.replace("~1", "/").replace("%7B", "{").replace("%7D", "}")
            # Then each link points at an operation the document has
            assert target_method in paths[target_path], name
            found[name] = f"{target_method.upper()} {target_path}"
        return found

    # Then a new thread leads to its messages, a new message to itself, a new file to itself
    assert targets("/threads", "post", "201")["SaveMessage"] == "POST /threads/{threadId}/messages"
    message_links = targets("/threads/{threadId}/messages", "post", "201")
    assert message_links["GetMessage"] == "GET /threads/{threadId}/messages/{messageId}"
    assert message_links["DeleteMessage"] == "DELETE /threads/{threadId}/messages/{messageId}"
    assert targets("/files/uploads", "post", "201")["GetFile"] == "GET /files/{fileId}"
    assert targets("/files", "post", "201")["DeleteFile"] == "DELETE /files/{fileId}"


def test_the_docs_page_names_its_icon_so_the_browser_asks_no_favicon(aws):
    reply = aws.call_api("GET", "/docs", sub=None)
    head = reply.body.split("</head>", 1)[0]
    assert '<link rel="icon" href="data:image/svg+xml,' in head


def test_the_websocket_protocol_is_served_as_an_asyncapi_document_whose_references_all_resolve(aws):
    from agentfiles.models import live

    # When it is fetched without a token
    reply = aws.call_api("GET", "/asyncapi.json", sub=None)
    assert reply.status == 200
    document = reply.body
    assert document["asyncapi"].startswith("3.")
    # Then every frame of the protocol is a message, with the schema of its model
    frames = {model.__name__ for model in (live.SubscriptionRequest, *live.Frame.__args__)}
    titles = {message["title"] for message in document["components"]["messages"].values()}
    assert titles == frames
    kinds = {
        document["components"]["schemas"][name]["properties"]["type"]["const"]
        for name in frames - {"SubscriptionRequest"}
    }
    assert kinds == {
        "subscribed",
        "unsubscribed",
        "delta",
        "message",
        "thread_deleted",
        "account_erased",
        "export",
        "file",
        "error",
    }
    # And the client sends subscriptions only; it receives everything else
    sent = [op for op in document["operations"].values() if op["action"] == "send"]
    assert [op["messages"][0]["$ref"].rsplit("/", 1)[1] for op in sent] == ["subscription"]
    # And every $ref in the document points at something in it
    refs: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    assert refs
    for ref in refs:
        target = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
