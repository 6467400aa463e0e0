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
    assert documented == {r.key for r in API_ROUTES if not r.public}
    for path, item in reply.body["paths"].items():
        for method, operation in item.items():
            assert "401" in operation["responses"], (method, path)
            assert operation["summary"], (method, path)
    assert "ErrorBody" in reply.body["components"]["schemas"]
    # And it says how to authenticate, so Swagger UI's "Authorize" takes a token
    assert reply.body["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
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
