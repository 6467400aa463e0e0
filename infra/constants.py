"""Names and lists the stack and its tests share. No CDK import here, so the API
function's tests can read the route list without loading the CDK."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agentfiles import topology

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO_ROOT / "functions"
DOMAIN_PACKAGE_DIR = REPO_ROOT / "layers" / "agentfiles"
REQUIREMENTS_DIR = REPO_ROOT / "layers" / "requirements"


def handler_of(function_name: str) -> str:
    """Each function ships as `functions/<name>/` and is imported by that name, on
    Lambda as in the repository and the local stack."""
    return f"functions.{function_name}.handler.lambda_handler"


SERVICE_PREFIX = "agentfiles"
METRICS_NAMESPACE = "agentfiles"


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str
    public: bool = False

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


# Every route of the HTTP contract, in one place: the stack maps each to the API
# function, and a test can hold this list against the function's OpenAPI paths.
API_ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("GET", "/health", public=True),
    ApiRoute("GET", "/openapi.json", public=True),
    ApiRoute("GET", "/docs", public=True),
    ApiRoute("GET", "/asyncapi.json", public=True),
    ApiRoute("POST", "/files/uploads"),
    ApiRoute("POST", "/files"),
    ApiRoute("GET", "/files"),
    ApiRoute("GET", "/files/{fileId}"),
    ApiRoute("GET", "/files/{fileId}/url"),
    ApiRoute("DELETE", "/files/{fileId}"),
    ApiRoute("POST", "/threads"),
    ApiRoute("GET", "/threads"),
    ApiRoute("GET", "/threads/{threadId}"),
    ApiRoute("DELETE", "/threads/{threadId}"),
    ApiRoute("POST", "/threads/{threadId}/messages"),
    ApiRoute("GET", "/threads/{threadId}/messages"),
    ApiRoute("GET", "/threads/{threadId}/messages/{messageId}"),
    ApiRoute("DELETE", "/threads/{threadId}/messages/{messageId}"),
    ApiRoute("POST", "/threads/{threadId}/images"),
    ApiRoute("GET", "/threads/{threadId}/messages/{messageId}/stream"),
    ApiRoute("POST", "/threads/{threadId}/messages/{messageId}/stop"),
    ApiRoute("GET", "/usage"),
    ApiRoute("GET", "/models"),
    ApiRoute("GET", "/account"),
    ApiRoute("DELETE", "/account"),
    ApiRoute("POST", "/exports"),
    ApiRoute("GET", "/exports/{exportId}"),
)

# Headers a browser may send to the API and to a presigned S3 URL.
API_ALLOWED_HEADERS = ("authorization", "content-type", "idempotency-key")
UPLOAD_ALLOWED_HEADERS = ("content-type", "if-none-match", "x-amz-checksum-sha256")

# Third-party packages for the layers, one pinned set per file. The model set adds
# the OpenAI client; only functions that call a model get it (it costs ~0.3 s and
# ~50 MB at cold start).
COMMON_REQUIREMENTS = "common"
MODEL_REQUIREMENTS = "model"
# The common set plus PyJWT and cryptography, for the function that checks tokens itself.
AUTH_REQUIREMENTS = "auth"
# The common set plus what reads documents (pypdf, cryptography) and decodes images
# (Pillow, pillow-heif), for the functions that make what is derived from files. The
# model set includes it.
MEDIA_REQUIREMENTS = "media"


# The functions a user waits for at a cold start (a request; an upload to be checked),
# which `snapStart=true` runs from SnapStart snapshots (see README, "Context options").
SNAP_START_FUNCTIONS = ("api", "upload_trigger")
# The alias the integrations invoke when a function runs from snapshots.
LIVE_ALIAS = "live"


def requirements_for(function_name: str) -> str:
    spec = topology.FUNCTIONS[function_name]
    if spec.needs_model:
        return MODEL_REQUIREMENTS
    if spec.verifies_tokens:
        return AUTH_REQUIREMENTS
    return MEDIA_REQUIREMENTS if spec.reads_media else COMMON_REQUIREMENTS
