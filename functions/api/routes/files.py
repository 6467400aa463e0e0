"""Files: register an upload, upload a small file, list, read, delete."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from agentfiles.logic import files
from agentfiles.models.files import (
    FilePage,
    FileResponse,
    FileUrlResponse,
    SmallUploadRequest,
    UploadRequest,
    UploadResponse,
)
from functions.api.contract import Cursor, FileId, Limit, Router, errors, json_response, link

router = Router()

_FILE = "$response.body#/file/id"
FILE_LINKS = {
    "GetFile": link("GET /files/{fileId}", fileId=_FILE),
    "GetFileUrl": link("GET /files/{fileId}/url", fileId=_FILE),
    "DeleteFile": link("DELETE /files/{fileId}", fileId=_FILE),
}


@router.post(
    "/files/uploads",
    summary="Register a file and get a presigned PUT",
    tags=["files"],
    responses={
        201: {"description": "Upload the bytes with the returned URL and headers", "links": FILE_LINKS},
        200: {"description": "This owner already has this content: no upload needed", "links": FILE_LINKS},
        **errors(400, 409, 413, 415),
    },
)
def register_upload(request: UploadRequest) -> Response[UploadResponse]:
    result = files.register_upload(router.owner(), request)
    return json_response(200 if result.deduplicated else 201, result)


@router.post(
    "/files",
    summary="Upload a small file in the body (base64), checked at once",
    tags=["files"],
    responses={
        201: {"description": "Stored and ready", "links": FILE_LINKS},
        200: {"description": "Deduplicated", "links": FILE_LINKS},
        **errors(400, 409, 413, 415),
    },
)
def upload_small_file(request: SmallUploadRequest) -> Response[UploadResponse]:
    stored = files.store_small_file(router.owner(), request)
    body = UploadResponse(file=files.file_out(stored.record), deduplicated=stored.deduplicated)
    return json_response(200 if stored.deduplicated else 201, body)


@router.get(
    "/files",
    summary="List files, newest first",
    tags=["files"],
    responses={200: {"description": "A page of files"}, **errors(400)},
)
def list_files(limit: Limit = 50, cursor: Cursor = None) -> FilePage:
    return files.list_files(router.owner(), limit, cursor)


@router.get(
    "/files/<fileId>",
    summary="Read a file, with a fresh download URL when ready",
    tags=["files"],
    responses={200: {"description": "The file"}, **errors(404)},
)
def get_file(file_id: FileId) -> FileResponse:
    return FileResponse(file=files.file_out(files.get_file(router.owner(), file_id)))


@router.get(
    "/files/<fileId>/url",
    summary="A fresh download URL of a ready file",
    tags=["files"],
    responses={
        200: {"description": "A URL minted now, and when it expires"},
        **errors(404, 409),
    },
)
def get_file_url(file_id: FileId) -> FileUrlResponse:
    """409 `file_not_ready` while the file is being checked or scanned for malware, or
    once it was rejected."""
    return FileUrlResponse(file_url=files.file_url(router.owner(), file_id))


@router.delete(
    "/files/<fileId>",
    summary="Delete a file that no message references",
    tags=["files"],
    responses={204: {"description": "Deleted", "content": {}}, **errors(404, 409)},
)
def delete_file(file_id: FileId) -> Response[None]:
    files.delete_file(router.owner(), file_id)
    return Response(status_code=204)
