"""The part of an S3 event notification the upload trigger reads.

Powertools' `S3Model` requires every field real S3 sends (userIdentity,
requestParameters, ownerIdentity, ...); S3-compatible emitters, moto among them,
leave some out. This model reads only what the check needs, and ignores the rest.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class S3Object(_Lenient):
    key: str
    size: int | None = None
    e_tag: str | None = Field(None, alias="eTag")


class S3Bucket(_Lenient):
    name: str


class S3Entity(_Lenient):
    bucket: S3Bucket
    object: S3Object


class S3EventRecord(_Lenient):
    event_name: str = Field(alias="eventName")
    s3: S3Entity


class S3EventNotification(_Lenient):
    """Either object records, or S3's one-off `s3:TestEvent` (no records)."""

    records: list[S3EventRecord] = Field(default_factory=list, alias="Records")
    event: str | None = Field(None, alias="Event")
