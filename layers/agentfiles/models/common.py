from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class CamelModel(BaseModel):
    """camelCase on the wire and in DynamoDB, snake_case in Python.

    Built on first use (`defer_build`), not at import: a cold start then builds the
    validators and serializers of the models its request uses, not of every model the
    function could use. `build_models` builds them all, for an init nobody waits for."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)

    def dump(self) -> dict:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OmitNone(CamelModel):
    """An API view whose absent fields are left out of the JSON instead of sent as null."""

    # No return annotation: with one (`-> dict`), pydantic documents the view as a bare
    # object and the OpenAPI document loses its fields; without, they are the model's.
    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler):
        return {k: v for k, v in handler(self).items() if v is not None}


def _unicode(value: object) -> object:
    """Text a client sends is stored and sent on as UTF-8: a lone surrogate (JSON lets
    `"\\ud800"` through) could be neither, so it is refused where it comes in."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (it holds a lone surrogate)") from None
    elif isinstance(value, list | tuple):
        for item in value:
            _unicode(item)
    return value


class RequestModel(CamelModel):
    """A client's body: unknown fields are an error, not silently dropped; every string
    in it is valid Unicode."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", defer_build=True
    )

    @field_validator("*", mode="after")
    @classmethod
    def _valid_unicode(cls, value: object) -> object:
        return _unicode(value)


class Page(CamelModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last"
    )


class ErrorDetail(CamelModel):
    code: str
    message: str
    details: dict | None = None


class ErrorBody(CamelModel):
    error: ErrorDetail


def build_models() -> "None":
    """Build every model imported so far (see `CamelModel`)."""
    pending: list[type[BaseModel]] = [CamelModel]
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if not model.__pydantic_generic_metadata__["parameters"]:
            model.model_rebuild()


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def iso_from_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuthorizerRefusal(BaseModel):
    """The body of every 401: API Gateway's JWT authorizer answers with it before any
    function runs, so it is AWS's shape, not the error envelope."""

    message: Literal["Unauthorized"]
