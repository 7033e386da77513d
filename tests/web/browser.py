"""Debian's Chromium, driven by Playwright's sync API on a thread of its own.

The tests share one reactor with the asud server under test; Playwright's sync API blocks. So the browser
lives on one dedicated thread (Playwright objects must stay on the thread that made them), and a test
hands it a function: ``await browser.session(origin, artifacts, in_browser)`` runs
``in_browser(pages)`` there while the reactor keeps answering the browser's requests, then checks that no
script failed and no request left the server (``Pages.check``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from tests.web.pages import Pages

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "BrowserThread"]

T = TypeVar("T")

CHROMIUM = Path("/usr/bin/chromium")
#: Chromium switches for a quiet, offline, headless run (no sandbox: tests may run as root in a container).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Longest wait for Chromium to start.
LAUNCH_TIMEOUT = 60.0

_Job = tuple[Callable[[Any], Any], Deferred[Any]]


class BrowserThread:
    """One headless Chromium on one thread; :meth:`run` and :meth:`session` hand it work."""

    def __init__(self, executable: Path = CHROMIUM, args: list[str] | None = None) -> None:
        self._executable = executable
        self._args = list(CHROMIUM_ARGS if args is None else args)
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="chromium", daemon=True)

    def start(self) -> None:
        """Launch Chromium (blocking: the reactor is not needed for it)."""
        self._thread.start()
        if not self._ready.wait(LAUNCH_TIMEOUT):
            raise TimeoutError(f"Chromium did not start within {LAUNCH_TIMEOUT} s")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join(LAUNCH_TIMEOUT)

    def run(self, work: Callable[[Any], T]) -> Deferred[T]:
        """``work(browser)`` on the browser's thread; fires on the reactor with its result or error."""
        done: Deferred[T] = Deferred()
        self._jobs.put((work, done))
        return done

    def session(self, origin: str, artifacts: Path, work: Callable[[Pages], T]) -> Deferred[T]:
        """``work(pages)`` with fresh :class:`Pages` on ``origin``; afterwards no script error and no
        request outside ``origin`` (checked only when ``work`` succeeded), and every context closed."""

        def in_thread(browser: Any) -> T:
            pages = Pages(browser, origin, artifacts)
            try:
                result = work(pages)
                pages.check()
                return result
            finally:
                pages.close()

        return self.run(in_thread)

    def _main(self) -> None:
        try:
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(self._executable), args=self._args, headless=True
                )
                self._ready.set()
                try:
                    self._serve(browser)
                finally:
                    browser.close()
        except BaseException as error:
            self._error = error
            self._ready.set()
            self._fail_waiting(error)

    def _serve(self, browser: Any) -> None:
        while (job := self._jobs.get()) is not None:
            work, done = job
            try:
                result = work(browser)
            except BaseException:
                failure = Failure()
                reactor.callFromThread(done.errback, failure)  # type: ignore[attr-defined]
            else:
                reactor.callFromThread(done.callback, result)  # type: ignore[attr-defined]

    def _fail_waiting(self, error: BaseException) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                reactor.callFromThread(job[1].errback, Failure(error))  # type: ignore[attr-defined]
