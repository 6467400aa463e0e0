"""The part of an S3 event notification the upload trigger reads.

Powertools' `S3Model` requires every field real S3 sends (userIdentity,
requestParameters, ownerIdentity, ...); S3-compatible emitters, moto among them,
leave some out. This model reads only what the check needs, and ignores the rest.
"""

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


# ---- GuardDuty Malware Protection for S3: the scan result on EventBridge ------------


class ScannedObject(_Lenient):
    bucket_name: str = Field(alias="bucketName")
    object_key: str = Field(alias="objectKey")
    e_tag: str | None = Field(None, alias="eTag")
    version_id: str | None = Field(None, alias="versionId")


class Threat(_Lenient):
    name: str


class ScanResultDetails(_Lenient):
    scan_result_status: str = Field(alias="scanResultStatus")
    threats: list[Threat] | None = None


class ScanResultDetail(_Lenient):
    scan_status: str | None = Field(None, alias="scanStatus")
    resource_type: str | None = Field(None, alias="resourceType")
    s3_object_details: ScannedObject = Field(alias="s3ObjectDetails")
    scan_result_details: ScanResultDetails = Field(alias="scanResultDetails")


class ScanResultEvent(_Lenient):
    """`GuardDuty Malware Protection Object Scan Result`, as EventBridge delivers it (to
    the `scans` queue, whose message body is the event)."""

    source: str
    detail_type: str = Field(alias="detail-type")
    detail: ScanResultDetail

    @property
    def status(self) -> str:
        return self.detail.scan_result_details.scan_result_status

    @property
    def threat_names(self) -> list[str]:
        return [threat.name for threat in self.detail.scan_result_details.threats or []]
