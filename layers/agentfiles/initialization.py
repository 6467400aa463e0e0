"""How a function starts: on demand, or ahead of the requests it will serve.

On demand (`AWS_LAMBDA_INITIALIZATION_TYPE=on-demand`, and anywhere outside Lambda)
a request is waiting for the init to finish, so a function loads only what a request
needs and leaves the rest to the request that needs it. With SnapStart (`snap-start`:
Lambda initializes once when a version is published, snapshots the process and
restores the snapshot for each new execution environment) or provisioned concurrency,
nobody waits: the init loads and builds everything it can, so that the snapshot holds it.

A snapshot is restored in many environments at once, so what must differ between them,
or be fresh, is renewed after each restore (`after_restore`): the state of `random`
(seeded once at import, so every restored copy would draw the same numbers: botocore's
retry jitter and ours among them) and the AWS clients (their connections did not survive
the snapshot; their credentials come from Lambda's container endpoint and refresh
themselves). Ids need nothing: `agentfiles.ids` draws from `os.urandom` at each call, and
the kernel's generator is reseeded when a snapshot is restored.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from agentfiles.data import clients
from agentfiles.models.common import build_models

AHEAD_OF_REQUESTS = frozenset({"snap-start", "provisioned-concurrency"})


def ahead_of_requests() -> bool:
    """True when no request waits for this init (SnapStart, provisioned concurrency)."""
    return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand") in AHEAD_OF_REQUESTS


def prepare(load_everything: Callable[[], object] | None = None) -> None:
    """The end of a function's init. When no request waits for it, load what the
    function would load on demand (`load_everything`), build every model and create
    the clients, so that a snapshot holds them; and in any case have SnapStart call
    `after_restore` when it restores this process."""
    if ahead_of_requests():
        if load_everything is not None:
            load_everything()
        build_models()
        clients.warm()
    register_after_restore()


def after_restore() -> None:
    """What a restored snapshot renews before its first request."""
    random.seed()
    clients.reset()


def register_after_restore(hook: Callable[[], None] = after_restore) -> bool:
    """Register `hook` with the Lambda runtime's SnapStart hooks. Their library,
    `snapshot_restore_py`, ships in Lambda's Python runtimes (3.12 and later); elsewhere
    there is nothing to restore from, and this returns False."""
    try:
        from snapshot_restore_py import register_after_restore as register
    except ImportError:
        return False
    register(hook)
    return True
