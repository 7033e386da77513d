"""Browser pages for the tests: every request recorded, screenshots at two widths, layout checked.

``Pages.open(path)`` opens a page in a fresh context; ``shoot`` photographs it at desktop and phone width
into the artifacts directory and asserts the layout is sound there; ``check`` asserts no script error and
that every request stayed on the server under test.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.web.layout import layout_problems

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Pages:
    """Opens pages that record every request; :meth:`check_requests` asserts they all stayed local."""

    browser: Any
    origin: str
    artifacts: Path
    requests: list[str] = field(default_factory=list)
    #: Uncaught script errors and console errors (a refused CSP load shows up here too).
    errors: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def open(self, path: str, *, color_scheme: str = "light") -> Any:
        context = self.browser.new_context(viewport=DESKTOP, color_scheme=color_scheme, accept_downloads=True)
        self.contexts.append(context)
        context.on("request", lambda request: self.requests.append(request.url))
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self._console(page, message))
        page.set_default_timeout(15_000)
        page.goto(self.origin + path)
        return page

    def _console(self, page: Any, message: Any) -> None:
        # An HTTP error answer the page handles (404 of an unknown build, 400 of a refused request) is
        # logged by Chromium as "Failed to load resource"; that is not a script error.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"{page.url}: {message.text}")

    def shoot(self, page: Any, name: str) -> None:
        """Screenshots at desktop and phone width; both layouts must be sound."""
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page.set_viewport_size(viewport)
            page.wait_for_timeout(100)
            page.screenshot(path=str(self.artifacts / f"{name}-{label}.png"), full_page=True)
            problems = layout_problems(page)
            assert not problems, f"{name} at {label} width:\n" + "\n".join(problems)
        page.set_viewport_size(DESKTOP)

    def check(self) -> None:
        """No script error, and no request anywhere but this server."""
        assert not self.errors, "\n".join(self.errors)
        assert self.requests, "no request was recorded"
        outside = [url for url in self.requests if not url.startswith((self.origin + "/", "data:", "blob:"))]
        assert not outside, f"requests left {self.origin}: {outside}"

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def get_json(url: str, *, body: Any = None, timeout: float = 15.0) -> Any:
    """GET (or, with ``body``, POST as JSON) ``url`` from the browser's thread, where the reactor keeps
    serving; the decoded answer (error statuses are answers too)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())
