"""What each model error means for a reply: retry through SQS, or fail now."""

from __future__ import annotations

import httpx2 as httpx
import openai
import pytest

from agentfiles.logic.prompt import UnsupportedContent, bytes_part
from agentfiles.model_client import attachment_refusal, classify


def _status_error(cls, status: int, code: str | None = None, headers: dict | None = None):
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    body = {"error": {"message": f"status {status}", "code": code}}
    return cls(f"status {status}", response=response, body=body)


@pytest.mark.parametrize(
    ("error", "retryable", "code"),
    [
        (_status_error(openai.RateLimitError, 429, headers={"retry-after": "7"}), True, "model_rate_limited"),
        (_status_error(openai.RateLimitError, 429, code="insufficient_quota"), False, "model_rejected"),
        (_status_error(openai.InternalServerError, 503), True, "model_error"),
        (_status_error(openai.BadRequestError, 400), False, "model_rejected"),
        (
            _status_error(openai.BadRequestError, 400, code="content_policy_violation"),
            False,
            "content_policy",
        ),
        (_status_error(openai.AuthenticationError, 401), False, "model_rejected"),
        (openai.APITimeoutError(httpx.Request("POST", "http://model")), True, "model_timeout"),
        (openai.APIConnectionError(request=httpx.Request("POST", "http://model")), True, "model_unreachable"),
    ],
)
def test_model_errors_are_classified(error, retryable, code):
    failure = classify(error)
    assert failure is not None
    assert (failure.retryable, failure.code) == (retryable, code)


def test_retry_after_is_read():
    failure = classify(_status_error(openai.RateLimitError, 429, headers={"retry-after": "7"}))
    assert failure.retry_after_s == 7


def test_other_exceptions_are_not_model_errors():
    assert classify(ValueError("x")) is None


def test_a_type_the_model_cannot_take_is_refused_with_a_clear_error():
    with pytest.raises(UnsupportedContent, match="application/zip"):
        bytes_part("application/zip", b"PK\x03\x04", "a.zip", total_size=4)


# ---- an attachment the model refused ---------------------------------------------------


def _refusal_error(message: str, param: str | None = None, code: str | None = None, status: int = 400):
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, request=request)
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return openai.BadRequestError(message, response=response, body=body)


VLLM_FILE = (
    "Unsupported chat content part type: 'file'. Supported types: 'text', 'image_url', 'input_audio', "
    "'video_url', 'refusal'."
)


@pytest.mark.parametrize(
    ("error", "kind", "position", "whole_kind"),
    [
        # vLLM without `file` parts: the list of supported types that follows names images too
        (_refusal_error(VLLM_FILE, param="type", code="400"), "file", None, True),
        # OpenAI, a model without vision
        (
            _refusal_error(
                "Invalid content type. image_url is only supported by certain models.",
                param="messages.[2].content.[1].type",
            ),
            "image",
            (2, 1),
            True,
        ),
        # vLLM, a text-only model
        (_refusal_error("At most 0 image(s) may be provided in one request."), "image", None, True),
        # OpenAI, one image it could not read: that part, not every image
        (
            _refusal_error(
                "You uploaded an unsupported image. Please make sure your image is valid.",
                param="messages[0].content[3].image_url.url",
                code="invalid_image_format",
            ),
            "image",
            (0, 3),
            False,
        ),
        (
            _refusal_error(
                "Invalid file data: 'messages[1].content[0].file.file_data'.", code="invalid_value"
            ),
            "file",
            (1, 0),
            False,
        ),
        # A gateway that says a content type is refused, not which
        (_refusal_error("This endpoint does not accept that content part type."), None, None, False),
        # 422 from a validating server
        (
            _refusal_error("Input tag 'file' found using 'type' does not match", status=422),
            "file",
            None,
            False,
        ),
    ],
)
def test_a_400_about_an_attachment_is_read_as_a_refusal_of_its_kind_and_place(
    error, kind, position, whole_kind
):
    # Given a provider's 400 about an attachment / When it is read
    refusal = attachment_refusal(error)
    # Then it names the kind refused (when it says) and the part (when it points at one)
    assert refusal is not None
    assert (refusal.kind, refusal.position, refusal.whole_kind) == (kind, position, whole_kind)


@pytest.mark.parametrize(
    "error",
    [
        _refusal_error("Your request was rejected by the safety system.", code="content_policy_violation"),
        _refusal_error("This model's maximum context length is 128000 tokens."),
        _refusal_error(
            "Invalid 'messages[2].content[0].text': string too long.", param="messages[2].content[0].text"
        ),
        # A URL the provider could not fetch: the deployment is wrong, not the image
        _refusal_error(
            "Error while downloading https://bucket.s3.amazonaws.com/files/a/b.",
            param="messages[0].content[0].image_url.url",
            code="invalid_image_url",
        ),
        _status_error(openai.InternalServerError, 500),
        ValueError("image"),
    ],
)
def test_other_errors_are_not_refused_attachments(error):
    assert attachment_refusal(error) is None


def test_a_refusal_that_names_no_kind_nor_part_is_about_every_attachment_of_the_call():
    # Given a call that carried an image and a file, and a refusal that says neither
    from agentfiles.logic.chat import refused_parts
    from agentfiles.logic.prompt import Prompt, Sent
    from agentfiles.model_client import Refusal

    image, pdf = Sent((0, 1), "image", "a.png"), Sent((2, 0), "file", "b.pdf")
    prompt = Prompt([], sent={(0, 1): image, (2, 0): pdf})
    # When the refused parts are found / Then both are, and by kind or place only those
    assert refused_parts(prompt, Refusal(None, None, False, "400: bad content type")) == [image, pdf]
    assert refused_parts(prompt, Refusal("file", None, True, "400")) == [pdf]
    assert refused_parts(prompt, Refusal("image", (2, 0), False, "400")) == [pdf]
    assert refused_parts(prompt, Refusal("image", (0, 1), True, "400")) == [image]
