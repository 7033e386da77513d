"""``asud tail HASH``: print a build's log and follow it until the build ends (exit 0 done, 1 failed);
``asud tail --all``: follow every build the server runs, each line prefixed with its build's key.

Both read Server-Sent Events (``/api/v1/build/HASH/log`` and ``/api/v1/builds/live``) and reconnect with
``Last-Event-ID`` when the connection drops, so nothing is printed twice or skipped. Colours only when
stdout is a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater

from asud.scripts.command import Command, CommandFailed

__all__ = ["SseParser", "TailOptions"]

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: Seconds before reconnecting after the connection dropped; attempts before giving up.
RECONNECT_AFTER = 1.0
RECONNECTS = 30

_COLOURS = {"step": "\x1b[36m", "key": "\x1b[35m", "ok": "\x1b[32m", "bad": "\x1b[31m", "dim": "\x1b[2m"}
_RESET = "\x1b[0m"


class SseParser:
    """Bytes of an event stream → ``on_event(event, data, id)`` for each complete event."""

    def __init__(self, on_event: Callable[[str, dict[str, Any], str | None], None]) -> None:
        self.on_event = on_event
        self.buffer = b""
        self.last_id: str | None = None

    def feed(self, data: bytes) -> None:
        self.buffer += data.replace(b"\r\n", b"\n")
        while b"\n\n" in self.buffer:
            block, self.buffer = self.buffer.split(b"\n\n", 1)
            event, payload, event_id = "message", "", None
            for line in block.decode("utf-8", "replace").split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    event = value
                elif name == "data":
                    payload += value
                elif name == "id":
                    event_id = value
            if not payload:
                continue
            if event_id is not None:
                self.last_id = event_id
            try:
                data = json.loads(payload)
            except ValueError:
                continue
            self.on_event(event, data, event_id)


class _Printer:
    def __init__(self, out: TextIO, colour: bool) -> None:
        self.out = out
        self.colour = colour

    def paint(self, kind: str, text: str) -> str:
        return f"{_COLOURS[kind]}{text}{_RESET}" if self.colour else text

    def write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()


class TailOptions(Command):
    """``asud tail HASH [--server URL]`` / ``asud tail --all [--server URL] [--token T]``."""

    synopsis = "[--server URL] HASH | --all [--server URL] [--token T]"
    longdesc = ("Print a build's log and follow it until the build ends (exit 0 done, 1 failed), or with "
                "--all follow every build the server runs (until interrupted).")
    optFlags = [["all", "a", "follow every build on the server (its hash prefix on each line)"]]
    optParameters = [
        *Command.optParameters,
        ["server", None, DEFAULT_SERVER, "the server's URL"],
        ["token", None, None,
         "the server's [http] admin_token, for --all (else that of --config or $ASUD_HTTP__ADMIN_TOKEN)"],
    ]

    def __init__(self) -> None:
        super().__init__()
        self.request_hash: str | None = None

    def parseArgs(self, request_hash: str | None = None) -> None:
        self.request_hash = request_hash

    def postOptions(self) -> None:
        from twisted.python import usage

        if self["all"] == bool(self.request_hash):
            raise usage.UsageError("give either a request hash or --all")

    def run(self, reactor: Any) -> Deferred[int]:
        return Deferred.fromCoroutine(self._run(reactor))

    async def _run(self, reactor: Any) -> int:
        printer = _Printer(sys.stdout, sys.stdout.isatty())
        server = self["server"].rstrip("/")
        if self["all"]:
            token = self["token"] or self.load_config().http.admin_token
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            follow = _AllFollower(printer)
            await _follow(reactor, f"{server}/api/v1/builds/live", headers, follow.event, lambda: False)
            return 0
        one = _OneFollower(printer)
        await _follow(reactor, f"{server}/api/v1/build/{self.request_hash}/log", {}, one.event,
                      lambda: one.ended is not None)
        return 0 if one.ended == "done" else 1


class _OneFollower:
    def __init__(self, printer: _Printer) -> None:
        self.printer = printer
        self.step: str | None = None
        self.ended: str | None = None

    def event(self, event: str, data: dict[str, Any], event_id: str | None) -> None:
        paint = self.printer.paint
        if event == "line":
            if data.get("step") != self.step:
                self.step = data.get("step")
                self.printer.write(paint("step", f"==> {self.step}"))
            self.printer.write(str(data.get("text", "")))
        elif event == "status":
            if data.get("status") == "queued":
                self.printer.write(paint("dim", f"queued: position {data.get('queue_position')}"))
            else:
                self.printer.write(paint("dim", f"==> stage: {data.get('stage')}"))
                self.step = None
        elif event == "end":
            self.ended = str(data.get("status"))
            if self.ended == "done":
                self.printer.write(paint("ok", "done"))
            else:
                self.printer.write(paint("bad", f"failed: {data.get('detail')}"))


class _AllFollower:
    def __init__(self, printer: _Printer) -> None:
        self.printer = printer

    def event(self, event: str, data: dict[str, Any], event_id: str | None) -> None:
        paint = self.printer.paint
        prefix = paint("key", str(data.get("key", ""))[:12])
        if event == "line":
            self.printer.write(f"{prefix} {paint('step', str(data.get('step')))} {data.get('text', '')}")
        elif event == "started":
            self.printer.write(f"{prefix} {paint('dim', 'started on ' + str(data.get('node')))}")
        elif event == "status":
            self.printer.write(f"{prefix} {paint('dim', 'stage: ' + str(data.get('stage')))}")
        elif event == "finished":
            if data.get("status") == "done":
                self.printer.write(f"{prefix} {paint('ok', 'done')}")
            else:
                self.printer.write(f"{prefix} {paint('bad', 'failed: ' + str(data.get('detail')))}")


EventCallback = Callable[[str, dict[str, Any], str | None], None]


async def _follow(reactor: Any, url: str, headers: dict[str, str], on_event: EventCallback,
                  finished: Callable[[], bool]) -> None:
    """Read ``url``'s events until ``finished()``; reconnect (``Last-Event-ID``) when the connection drops."""
    import treq
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    client = HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
    parser = SseParser(on_event)
    attempts = 0
    while True:
        sent = {"Accept": "text/event-stream", **headers}
        if parser.last_id:
            sent["Last-Event-ID"] = parser.last_id
        try:
            response = await client.get(url, headers=sent, unbuffered=True)
        except Exception as error:
            attempts += 1
            if attempts > RECONNECTS:
                raise CommandFailed(f"cannot reach {url}: {error}") from None
            await deferLater(reactor, RECONNECT_AFTER, lambda: None)
            continue
        if response.code != 200:
            body = await treq.text_content(response)
            try:
                detail = json.loads(body).get("detail", body)
            except ValueError:
                detail = body
            raise CommandFailed(f"{url}: {response.code} {detail}")
        if attempts == 0 and parser.last_id is None:
            print(f"following {url}", file=sys.stderr, flush=True)
        attempts = 0
        with contextlib.suppress(Exception):  # the connection dropped mid-stream: resume after the last event
            await treq.collect(response, parser.feed)
        if finished():
            return
        await deferLater(reactor, RECONNECT_AFTER, lambda: None)
