"""Drawing: a picture made by the image model for a pending reply, stored as a file
the reply holds (counted in the owner's storage like any upload)."""

from __future__ import annotations

import base64
from typing import Any

from agentfiles.data import message_rows, reply_rows
from agentfiles.data.reply_rows import Lease
from agentfiles.errors import PayloadTooLarge
from agentfiles.logic import live, push
from agentfiles.logic.files import store_bytes
from agentfiles.logic.live import LeaseLost
from agentfiles.logic.prompt import UnsupportedContent
from agentfiles.logic.sniff import IMAGE_TYPES, sniff
from agentfiles.model_client import model_client
from agentfiles.models.common import now_ms
from agentfiles.models.jobs import GenerationJob, Outcome
from agentfiles.models.messages import ImagePart, MessageRecord, Part, TextPart
from agentfiles.settings import get_settings


def draw(job: GenerationJob, reply: MessageRecord, lease: Lease) -> Outcome:
    settings = get_settings()
    prompt_message = message_rows.get_message(job.owner, job.thread_id, job.message_id)
    if prompt_message is None:
        raise UnsupportedContent("the prompt message was deleted")
    prompt = " ".join(p.text for p in prompt_message.content if isinstance(p, TextPart))
    model = reply.model or settings.image_model
    options: dict[str, Any] = {"model": model, "prompt": prompt, "n": 1}
    if job.size and job.size != "auto":
        options["size"] = job.size
    if not model.startswith("gpt-image"):
        # gpt-image models always answer in base64 and refuse the parameter.
        options["response_format"] = "b64_json"
    result = model_client().images.generate(**options)
    b64 = result.data[0].b64_json if result.data else None
    if not b64:
        raise UnsupportedContent("the model returned no image data")
    if live.stop_requested(job.reply):
        # Stopped while drawing: the picture is not kept.
        final = reply_rows.finish(
            lease,
            text="",
            model=model,
            usage=None,
            finish_reason=None,
            now_ms=now_ms(),
            last_seq=0,
            status="stopped",
            job="image",
        )
        if final is None:
            raise LeaseLost
        push.publish_messages(final)
        return Outcome("stopped", model_calls=1)
    if len(b64) * 3 // 4 > settings.image_max_bytes:
        raise UnsupportedContent(
            f"the picture is over {settings.image_max_bytes} bytes, the most a generated image may be",
            code="image_too_large",
        )
    content = base64.b64decode(b64)
    media_type = sniff(content, complete=True)
    if media_type not in IMAGE_TYPES:
        raise UnsupportedContent("the model returned something that is not an image")
    extension = media_type.rsplit("/", 1)[-1]
    try:
        stored = store_bytes(
            job.owner, f"generated-{job.reply_id}.{extension}", media_type, content, generated=True
        )
    except PayloadTooLarge as refused:
        # The owner's storage is full: the picture cannot be kept, so the reply fails.
        raise UnsupportedContent(refused.message, code=refused.code) from refused
    parts: list[Part] = [ImagePart(type="image", file_id=stored.record.id, media_type=media_type)]
    final = reply_rows.finish_with_file(
        lease,
        content=parts,
        file_id=stored.record.id,
        model=model,
        now_ms=now_ms(),
    )
    if final is None:
        # The stored file holds no reference; the vacuum reclaims it after the grace.
        raise LeaseLost
    push.publish_messages(final)
    return Outcome("success", model_calls=1, writes=1)
