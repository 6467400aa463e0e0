"""What an owner has used and may use, and the models a client may name."""

from pydantic import Field

from agentfiles.models.common import CamelModel


class StorageUsage(CamelModel):
    bytes: int = Field(
        description="Bytes of the owner's files, pending uploads included (declared size), and of the "
        "content of their saved messages"
    )
    files: int = Field(description="The owner's files, pending uploads included; rejected ones are not")
    quota_bytes: int
    quota_files: int


class GenerationUsage(CamelModel):
    day: str = Field(description="The UTC day counted (YYYY-MM-DD)")
    replies: int = Field(description="Chat replies that ended this day, whatever their outcome")
    images: int = Field(description="Image replies that ended this day, whatever their outcome")
    prompt_tokens: int
    completion_tokens: int


class UsageLimits(CamelModel):
    generations_per_minute: int = Field(description="Messages that ask for a reply, and images, per minute")


class UsageOut(CamelModel):
    storage: StorageUsage
    generation: GenerationUsage
    limits: UsageLimits


class DefaultModels(CamelModel):
    chat: str
    image: str


class Capabilities(CamelModel):
    images: bool = Field(description="Sees image parts; if not, each image is named to it in text")
    files: bool = Field(description="Reads PDFs as file parts; if not, it gets their extracted text")
    max_image_side: int | None = Field(description="Images are fitted within this square (pixels)")
    max_image_short_side: int | None = Field(description="then to at most this on their short side")


class ModelsOut(CamelModel):
    chat: list[str] = Field(description="Chat models a message may name in `model`")
    image: list[str] = Field(description="Image models an image request may name in `model`")
    default: DefaultModels = Field(description="What is used when no model is named")
    capabilities: dict[str, Capabilities] = Field(description="What each chat model can read")
