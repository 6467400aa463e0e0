"""The whole system on one machine: moto's server (in a process of its own), the
resources the CDK stack declares, the built-in model (unless a real one is
configured), the HTTP API, one poller per queue, the vacuum schedule, and the
functions' instances (worker processes, started as events need them).

Every piece listens on 127.0.0.1 only. The functions find their configuration in
`os.environ`, as on Lambda: the resource names from `provision`, the endpoint of
moto through `AWS_ENDPOINT_URL`, and local defaults a user can override.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from agentfiles import topology
from agentfiles.data import clients
from agentfiles.settings import get_settings
from agentfiles_local.provision import REGION, Resources, provision
from agentfiles_local.runtime import scanner as emulated_scanner
from agentfiles_local.runtime.aws import Credentials, MotoProcess
from agentfiles_local.runtime.gateway import Gateway
from agentfiles_local.runtime.host import FunctionHost, default_concurrency, start_forkserver
from agentfiles_local.runtime.pollers import QueuePoller
from agentfiles_local.runtime.scheduler import Schedule
from agentfiles_local.runtime.snapshot import Snapshot
from agentfiles_local.runtime.tokens import AUDIENCE
from agentfiles_local.runtime.websocket import WebSocketGateway
from agentfiles_local.runtime.worker import LOG_FILE_VARIABLE

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# The one access key moto takes (it refuses others, as AWS refuses an unknown key).
CREDENTIALS = Credentials("testing", "testing")
VACUUM_FUNCTION = "vacuum"

# Function settings that differ locally; each can still be set in the environment.
FUNCTION_DEFAULTS = {
    # A model on the internet cannot fetch from moto: images go inline as data URLs.
    "URL_MODE": "inline",
    # A minute instead of a day, so that a newcomer sees the vacuum at work.
    "GRACE_SECONDS": "60",
    "RETRY_BASE_SECONDS": "1",
    # The emulated malware scanner runs, and files wait for it as they wait for GuardDuty.
    "MALWARE_SCAN": "true",
}

# Variables that would take the clients away from moto (or to a real account).
_AWS_OVERRIDES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def _check_free(port: int, variable: str) -> None:
    """Fail early on a taken port: moto's server binds on its own thread and, if it
    cannot, its `start()` waits forever. The probe binds as the servers do, with
    SO_REUSEADDR: the connections of a stack stopped a moment ago (Ctrl-C, then `make
    run` again) wait out TIME_WAIT on the port, which does not stop a server from binding."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as error:
            raise OSError(error.errno, f"{variable}={port}: {error.strerror}") from None


@dataclass(frozen=True)
class StackConfig:
    """The runtime's own settings (the functions' settings are `agentfiles.settings`)."""

    port: int = 8000
    moto_port: int = 0
    fake_model_port: int = 0
    queue_visibility_seconds: int = 5
    vacuum_interval_seconds: float = 30.0
    # The built-in model's pause between the words it streams: a reply a person can
    # watch arrive (and stop). Tests set 0.
    fake_model_word_delay_ms: int = 60
    concurrency: int = field(default_factory=default_concurrency)
    # Where the data is kept between runs (`serve --data DIR`); None keeps it in memory.
    data_dir: Path | None = None
    # Where the functions' own output goes (their JSON logs and metrics, CloudWatch's
    # share on AWS), so the console keeps one line per request; None: the console.
    function_log: Path | None = None
    # Web origins besides the stack's own page that may upload to and download from moto
    # (a client's dev server, say): `CORS_ORIGINS`, as the `corsOrigins` context on AWS.
    web_origins: tuple[str, ...] = ()
    # The emulated malware scanner (with MALWARE_SCAN on): how long after an upload it
    # reports, and the SHA-256s it reports as threats besides the EICAR test file.
    malware_scan_delay_ms: int = emulated_scanner.DEFAULT_DELAY_MS
    malware_sha256s: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StackConfig:
        """Read PORT, MOTO_PORT, FAKE_MODEL_PORT, QUEUE_VISIBILITY_SECONDS,
        VACUUM_INTERVAL_SECONDS, LOCAL_CONCURRENCY and FAKE_MODEL_WORD_DELAY_MS; a bad
        value is a ValueError that names the variable."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for name, variable, kind, low in (
            ("port", "PORT", int, 0),
            ("moto_port", "MOTO_PORT", int, 0),
            ("fake_model_port", "FAKE_MODEL_PORT", int, 0),
            ("queue_visibility_seconds", "QUEUE_VISIBILITY_SECONDS", int, 1),
            ("vacuum_interval_seconds", "VACUUM_INTERVAL_SECONDS", float, 0.1),
            ("concurrency", "LOCAL_CONCURRENCY", int, 1),
            ("fake_model_word_delay_ms", "FAKE_MODEL_WORD_DELAY_MS", int, 0),
            ("malware_scan_delay_ms", "MALWARE_SCAN_DELAY_MS", int, 0),
        ):
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            try:
                value = kind(raw)
            except ValueError:
                raise ValueError(f"{variable}={raw!r} is not a number") from None
            if value < low or (name.endswith("port") and value > 65535):
                raise ValueError(f"{variable}={raw!r} is out of range")
            values[name] = value
        origins = [origin.strip() for origin in env.get("CORS_ORIGINS", "").split(",") if origin.strip()]
        if "*" in origins:
            raise ValueError("CORS_ORIGINS='*' would let any web page use moto: name the origins")
        if origins:
            values["web_origins"] = tuple(origins)
        values["malware_sha256s"] = emulated_scanner.threat_hashes_of(env.get("LOCAL_MALWARE_SHA256S", ""))
        return cls(**values)


@dataclass
class ModelInUse:
    base_url: str | None
    name: str
    fake: bool

    def describe(self) -> str:
        where = "the built-in fake model" if self.fake else (self.base_url or "api.openai.com")
        return f"{self.name} via {where}" + (f" ({self.base_url})" if self.fake else "")


@dataclass
class LocalStack:
    """The running system, between `start()` and `stop()` (or in a `with` block). One
    per process: it sets `os.environ` for the functions it hosts, as Lambda would."""

    config: StackConfig = field(default_factory=StackConfig)
    functions: FunctionHost | None = None
    moto: MotoProcess | None = None
    resources: Resources | None = None
    model: ModelInUse | None = None
    gateway: Gateway | None = None
    websocket: WebSocketGateway | None = None
    pollers: list[QueuePoller] = field(default_factory=list)
    schedule: Schedule | None = None
    scanner: emulated_scanner.EmulatedScanner | None = None
    _fake_model: Any = None
    # Set once every piece runs: only a stack that started saves its data when it stops.
    _serving: bool = False

    @property
    def aws_endpoint(self) -> str:
        assert self.moto is not None
        host, port = self.moto.get_host_and_port()
        return f"http://{host}:{port}"

    # ---- lifecycle

    def start(self) -> LocalStack:
        """Bring everything up in dependency order; on any failure, take down what
        started and re-raise."""
        functions = self.functions = self.functions or FunctionHost(concurrency=self.config.concurrency)
        try:
            # A taken port fails before anything runs.
            if self.config.port:
                _check_free(self.config.port, "PORT")
            if self.config.function_log is not None:
                self.config.function_log.write_bytes(b"")  # this run's lines only
                os.environ[LOG_FILE_VARIABLE] = str(self.config.function_log)
            else:
                os.environ.pop(LOG_FILE_VARIABLE, None)
            # moto and the functions' instances are forked from one server process
            # that imports the heavy libraries once; it starts loading them now.
            start_forkserver()
            self._start_aws()
            self._provision()
            self._restore()
            self._start_model()
            # Bound before the functions load: they learn its issuer and JWKS address.
            gateway = self._bind_gateway()
            self._bind_websocket(gateway)
            self._load_functions()
            self._start_pollers()
            self._start_scanner()
            if functions.has(VACUUM_FUNCTION):
                self.schedule = Schedule(
                    functions, VACUUM_FUNCTION, self.config.vacuum_interval_seconds
                ).start()
            assert self.websocket is not None
            self.websocket.start()
            # Last, so that a `/health` answer means every piece is running.
            gateway.start()
            self._serving = True
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop taking requests, let the batches in hand settle, then the servers."""
        if self.gateway is not None:
            self.gateway.stop()
        if self.websocket is not None:
            self.websocket.stop()
        for poller in self.pollers:
            poller.request_stop()
        for poller in self.pollers:
            poller.stop()
        if self.schedule is not None:
            self.schedule.stop()
        if self.scanner is not None:
            self.scanner.stop()
        if self.functions is not None:
            self.functions.stop()
        try:
            if self._serving:
                self._save()
        finally:
            # A save that fails still lets the servers go (its error is what the caller sees).
            self._serving = False
            if self._fake_model is not None:
                self._fake_model.stop()
            if self.moto is not None:
                self.moto.stop()
            self.gateway, self.websocket, self.pollers, self.schedule = None, None, [], None
            self.scanner = None
            self._fake_model, self.moto = None, None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---- steps

    def _start_aws(self) -> None:
        if self.config.moto_port:
            _check_free(self.config.moto_port, "MOTO_PORT")
        public = os.environ.get("URL_MODE", FUNCTION_DEFAULTS["URL_MODE"]) == "public"
        self.moto = MotoProcess(HOST, self.config.moto_port, CREDENTIALS, public_reads=public).start()
        for name in [*_AWS_OVERRIDES, *(n for n in os.environ if n.startswith("AWS_ENDPOINT_URL_"))]:
            os.environ.pop(name, None)
        os.environ.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws_endpoint,
                "AWS_ACCESS_KEY_ID": CREDENTIALS.access_key_id,
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS.secret_access_key,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        clients.reset()

    def _provision(self) -> None:
        self.resources = provision(
            boto3.session.Session(region_name=REGION),
            endpoint_url=self.aws_endpoint,
            # Failed records must come back in seconds here, not in the minutes AWS uses.
            visibility_timeout_seconds=self.config.queue_visibility_seconds or None,
            # A page on any local port (the web page, a tool) may PUT to a presigned URL.
            cors_origins=("*",),
        )
        os.environ.update(self.resources.function_environment())
        for name, value in FUNCTION_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if os.environ["URL_MODE"] == "public":
            # Locally the bucket on moto stands in for the public CloudFront origin the
            # stack puts in front of it on AWS: anyone may read its objects.
            bucket = self.resources.bucket_name
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            }
            clients.s3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
            os.environ.setdefault("PUBLIC_BASE_URL", f"{self.aws_endpoint}/{bucket}")
        get_settings.cache_clear()

    def _snapshot(self) -> Snapshot | None:
        if self.config.data_dir is None or self.resources is None:
            return None
        return Snapshot(self.config.data_dir, self.resources, self.aws_endpoint)

    def _restore(self) -> None:
        snapshot = self._snapshot()
        if snapshot is None:
            return
        if not snapshot.saved:
            log.info("data: nothing saved in %s yet; it will be when the stack stops", snapshot.directory)
            return
        log.info("data: %s restored from %s", snapshot.load(), snapshot.directory)

    def _save(self) -> None:
        """Once nothing runs any more, and while moto still does."""
        snapshot = self._snapshot()
        if snapshot is not None:
            log.info("data: %s saved to %s", snapshot.save(), snapshot.directory)

    def _start_model(self) -> None:
        if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
            self.model = ModelInUse(os.environ.get("OPENAI_BASE_URL"), get_settings().model, fake=False)
            return
        try:
            from agentfiles_local.fake_model import FakeModel
        except ImportError:
            log.warning("no model configured and the built-in fake model is missing: replies will fail")
            self.model = ModelInUse(None, get_settings().model, fake=False)
            return
        self._fake_model = FakeModel(
            host=HOST,
            port=self.config.fake_model_port,
            chunk_delay_s=self.config.fake_model_word_delay_ms / 1000,
            # Presigned and public URLs point at moto; nothing else is the stack's.
            fetch_from=(self.aws_endpoint,),
        ).start()
        os.environ.update({"OPENAI_BASE_URL": self._fake_model.url, "OPENAI_API_KEY": "local"})
        get_settings.cache_clear()
        self.model = ModelInUse(self._fake_model.url, get_settings().model, fake=True)

    def _load_functions(self) -> None:
        assert self.functions is not None
        for name in topology.FUNCTIONS:
            self.functions.load(name)
        if not self.functions.has("api"):
            raise RuntimeError("functions/api/handler.py is missing: there is no API to serve")
        # One warm instance of each function before the stack says it is up, so that a
        # first request or message does not wait for a cold start (later ones may).
        self.functions.warm()

    def _bind_gateway(self) -> Gateway:
        assert self.functions is not None
        try:
            self.gateway = Gateway(self.functions, host=HOST, port=self.config.port, health=self.health)
        except OSError as error:
            raise OSError(error.errno, f"PORT={self.config.port}: {error.strerror}") from None
        # Of web pages, only the stack's own may call moto (its uploads and downloads).
        assert self.moto is not None
        self.moto.allow_origins(
            [self.gateway.url, f"http://localhost:{self.gateway.port}", *self.config.web_origins]
        )
        return self.gateway

    def _bind_websocket(self, gateway: Gateway) -> None:
        """The WebSocket API and its @connections endpoint; the functions learn where to
        push, and the authorizer checks tokens against this stack's own issuer and JWKS."""
        self.websocket = WebSocketGateway(self.functions, host=HOST)
        os.environ.update(
            {
                "WEBSOCKET_CALLBACK_URL": self.websocket.callback_url,
                "JWT_ISSUER": gateway.tokens.issuer,
                "JWT_AUDIENCE": AUDIENCE,
                "JWKS_URL": f"{gateway.url}/.well-known/jwks.json",
            }
        )
        get_settings.cache_clear()
        clients.reset()

    def _start_pollers(self) -> None:
        assert self.resources is not None and self.functions is not None
        # One session for every poller's client: each new session loads botocore's data.
        session = boto3.session.Session(region_name=REGION)
        for spec in topology.QUEUES.values():
            if not self.functions.has(spec.consumer):
                log.warning("queue %s has no consumer (%s): not polled", spec.name, spec.consumer)
                continue
            poller = QueuePoller(
                spec,
                queue_url=self.resources.queue_urls[spec.name],
                queue_arn=self.resources.queue_arns[spec.name],
                sqs=session.client("sqs", endpoint_url=self.aws_endpoint),
                host=self.functions,
            )
            self.pollers.append(poller.start())

    def _start_scanner(self) -> None:
        """The emulated GuardDuty Malware Protection for S3, when files wait for a scan."""
        assert self.resources is not None
        if not get_settings().malware_scan:
            return
        session = boto3.session.Session(region_name=REGION)
        s3 = session.client("s3", endpoint_url=self.aws_endpoint)
        sqs = session.client("sqs", endpoint_url=self.aws_endpoint)
        bucket = self.resources.bucket_name
        self.scanner = emulated_scanner.EmulatedScanner(
            s3=s3,
            sqs=sqs,
            bucket=bucket,
            queue_url=emulated_scanner.subscribe(s3, sqs, bucket),
            scans_queue_url=self.resources.queue_urls["scans"],
            delay_s=self.config.malware_scan_delay_ms / 1000,
            threat_hashes=self.config.malware_sha256s,
        ).start()

    # ---- what runs where

    def health(self) -> dict[str, Any]:
        """What `GET /health` adds to `{"status": "ok"}`: enough for a person or a test
        to find every piece."""
        assert self.gateway is not None and self.resources is not None and self.model is not None
        assert self.functions is not None
        return {
            "api": self.gateway.url,
            "docs": f"{self.gateway.url}/docs",
            "websocketUrl": self.websocket.url if self.websocket else None,
            "websocketCallbackUrl": self.websocket.callback_url if self.websocket else None,
            "awsEndpoint": self.aws_endpoint,
            "region": REGION,
            "table": self.resources.table_name,
            "bucket": self.resources.bucket_name,
            "queues": dict(self.resources.queue_urls),
            "deadLetterQueues": dict(self.resources.dlq_urls),
            "model": {"name": self.model.name, "baseUrl": self.model.base_url, "fake": self.model.fake},
            "functions": self.functions.names,
            "concurrency": self.config.concurrency,
            "instances": self.functions.instances(),
            "pollers": {poller.spec.name: poller.running for poller in self.pollers},
            "schedule": None
            if self.schedule is None
            else {
                "function": self.schedule.function,
                "intervalSeconds": self.schedule.interval_seconds,
                "running": self.schedule.running,
                "runs": self.schedule.runs,
            },
            "settings": {
                # What the operator's commands (agentfiles admin) count quotas against.
                "storageQuotaBytes": get_settings().storage_quota_bytes,
                "storageQuotaFiles": get_settings().storage_quota_files,
                "urlMode": os.environ.get("URL_MODE"),
                "graceSeconds": int(os.environ.get("GRACE_SECONDS", "0")),
                "queueVisibilitySeconds": self.config.queue_visibility_seconds,
                "malwareScan": get_settings().malware_scan,
            },
            "malwareScanner": None
            if self.scanner is None
            else {
                "running": self.scanner.running,
                "delayMs": self.config.malware_scan_delay_ms,
                "scanned": self.scanner.scanned,
            },
        }

    def banner(self) -> str:
        assert self.gateway is not None and self.model is not None and self.resources is not None
        url = self.gateway.url
        queues = ", ".join(f"{p.spec.name} → {p.spec.consumer}" for p in self.pollers) or "none"
        schedule = (
            f"; {self.schedule.function} every {self.schedule.interval_seconds:g} s" if self.schedule else ""
        )
        return "\n".join(
            (
                "agentfiles local stack",
                f"  API     {url}",
                f"  web     {url}/  (sign in as any local user)",
                f"  docs    {url}/docs",
                f"  push    {self.websocket.url if self.websocket else 'off'}  (?token=..., then subscribe)",
                f'  token   curl -s -X POST {url}/dev/token -d \'{{"sub": "alice"}}\'',
                f"  model   {self.model.describe()}",
                f"  AWS     moto at {self.aws_endpoint} "
                f"(table {self.resources.table_name}, bucket {self.resources.bucket_name})",
                f"  queues  {queues}{schedule}",
                f"  scan    emulated GuardDuty malware scanner: EICAR and LOCAL_MALWARE_SHA256S, "
                f"{self.config.malware_scan_delay_ms} ms after each upload"
                if self.scanner
                else "  scan    off (MALWARE_SCAN=false): files are ready once checked",
                f"  lambda  up to {self.config.concurrency} instances of each function, "
                "each in its own process (INIT lines mark cold starts)",
                f"  data    {self.config.data_dir} (saved when it stops, restored when it starts)"
                if self.config.data_dir
                else "  data    in memory only (serve --data DIR keeps it)",
                f"  logs    one line per request here; the functions' JSON logs and metrics in "
                f"{self.config.function_log} (serve --json prints them here)"
                if self.config.function_log
                else "  logs    the functions' JSON logs and metrics are printed here (--json)",
                "Ctrl-C stops it.",
            )
        )
