"""`python -m agentfiles_local.fake_model [--host H] [--port N]`: run the fake model
as a process (e.g. beside a local stack started elsewhere). Prints its base URL on
the first line of stdout, then serves until interrupted or terminated."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from agentfiles_local.fake_model.server import FakeModel


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m agentfiles_local.fake_model", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--chunk-delay-s", type=float, default=0.0, help="pause between stream chunks")
    parser.add_argument("--word-count", type=int, default=None, help="pad every reply to this many words")
    parser.add_argument(
        "--fetch-from",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="an origin image URLs may be downloaded from, e.g. http://127.0.0.1:5000 (repeatable; "
        "default: none, only data URLs)",
    )
    parser.add_argument(
        "--refuse",
        default=None,
        help="kinds of part refused with a 400 (comma-separated): file as vLLM, image as a text-only model",
    )
    args = parser.parse_args(argv)

    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fake = FakeModel(
        args.host,
        args.port,
        chunk_delay_s=args.chunk_delay_s,
        word_count=args.word_count,
        fetch_from=args.fetch_from,
        refuse=args.refuse,
    ).start()
    print(fake.url, flush=True)
    try:
        stopping.wait()
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
