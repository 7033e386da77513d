"""The ceilings of the throughput figures: bare ``twisted.web`` servers, one process each, no access log.

``python -m bench.bare resource BODY HEADERS PORT`` answers every GET, HEAD and POST under any path with
the bytes of the file BODY and the headers of the JSON file HEADERS (what the daemon sent for the same
request): a ``Resource`` that is its own child, ``isLeaf``, nothing else. ``python -m bench.bare file DIR
PORT`` serves DIR with ``twisted.web.static.File``. Both print ``listening on PORT`` once they listen.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from twisted.web.resource import Resource
from twisted.web.server import Request, Site

__all__ = ["FixedAnswer", "QuietSite", "main"]


class QuietSite(Site):
    """A ``Site`` without the per-request access log line (the daemon's ``[http] access_log`` is off too)."""

    def log(self, request: object) -> None:
        pass


class FixedAnswer(Resource):
    """The same pre-rendered answer for every request."""

    isLeaf = True

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.body = body
        self.headers = [(name.encode(), [value.encode()]) for name, value in headers.items()]
        self.headers.append((b"content-length", [str(len(body)).encode()]))

    def render_GET(self, request: Request) -> bytes:
        for name, values in self.headers:
            request.responseHeaders.setRawHeaders(name, values)
        return self.body

    render_HEAD = render_GET
    render_POST = render_GET


def main(argv: Sequence[str]) -> None:
    kind, *rest = argv
    if kind == "resource":
        body_file, headers_file, port = rest
        headers = json.loads(Path(headers_file).read_text(encoding="utf-8"))
        root: Resource = FixedAnswer(Path(body_file).read_bytes(), headers)
    elif kind == "file":
        from twisted.web.static import File

        directory, port = rest
        root = File(directory)
    else:
        raise SystemExit(f"usage: python -m bench.bare resource BODY HEADERS PORT | file DIR PORT ({kind}?)")
    from twisted.internet import reactor as global_reactor

    reactor = cast(Any, global_reactor)  # the module stands for the reactor it installed
    site = QuietSite(root)  # type: ignore[no-untyped-call]
    site.displayTracebacks = False
    reactor.listenTCP(int(port), site, interface="127.0.0.1")
    print(f"listening on {port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
