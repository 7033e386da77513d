"""Signed ``sha256sums`` lists of upstream directories, kept on disk and re-checked cheaply.

A directory's ``sha256sums`` (verified with its ``sha256sums.sig``) vouches for every file in it: the
ImageBuilder archive, ``packages/…``, ``kmods/<kver>/…``, apk ``packages.adb``. The verified text is kept
with its ``ETag``/``Last-Modified``; later look-ups send a conditional request and, on "not modified",
reuse the kept copy (verified again against the keys given, which may have changed), so a warm build
downloads a few hundred bytes at most. The listings are small: verifying and parsing them, and the state
file, stay on the reactor thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from twisted.internet.defer import Deferred

from asud.errors import SignatureError, UpstreamError
from asud.upstream.fetch import Fetcher
from asud.upstream.sha256sums import parse_sha256sums
from asud.upstream.usign import PublicKey, verify

__all__ = ["SignedSums"]


def _write_json_atomic(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(temp, path)


class SignedSums:
    """``get(dir_url, keys)`` → ``{relative path: sha256}`` of a directory whose listing verifies."""

    def __init__(self, state_dir: Path, fetcher: Fetcher) -> None:
        self.state_dir = state_dir
        self.fetcher = fetcher

    def _state_path(self, dir_url: str) -> Path:
        return self.state_dir / f"{hashlib.sha256(dir_url.encode()).hexdigest()[:32]}.json"

    def _load(self, dir_url: str) -> dict[str, str]:
        try:
            data = json.loads(self._state_path(dir_url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == dir_url else {}

    def get(self, dir_url: str, keys: Sequence[PublicKey]) -> Deferred[dict[str, str]]:
        """The verified listing of ``dir_url`` (which ends with ``/``).

        Fails with ``SignatureError`` when the signature does not verify with ``keys`` (nothing is kept
        then), ``UpstreamNotFound`` when the directory has no listing, ``UpstreamError`` for other failures.
        """
        return Deferred.fromCoroutine(self._get(dir_url, keys))

    async def _get(self, dir_url: str, keys: Sequence[PublicKey]) -> dict[str, str]:
        if not dir_url.endswith("/"):
            dir_url += "/"
        if not keys:
            raise SignatureError(f"{dir_url}: no trusted public keys configured to verify sha256sums")
        state = self._load(dir_url)
        have_copy = bool(state.get("sums") and state.get("sig"))
        answer = await self.fetcher.fetch(
            f"{dir_url}sha256sums",
            etag=state.get("etag") if have_copy else None,
            last_modified=state.get("last_modified") if have_copy else None,
        )
        if answer.not_modified and have_copy:
            sums_text, sig_text = state["sums"], state["sig"]
            changed = False
        else:
            if answer.body is None:
                raise UpstreamError(f"{dir_url}sha256sums: empty answer")
            try:
                sums_text = answer.body.decode("utf-8")  # strict: re-encoding must give the signed bytes
            except UnicodeDecodeError as error:
                raise SignatureError(f"{dir_url}sha256sums: not UTF-8 text ({error})") from error
            sig_answer = await self.fetcher.fetch(f"{dir_url}sha256sums.sig")
            if sig_answer.body is None:
                raise UpstreamError(f"{dir_url}sha256sums.sig: empty answer")
            sig_text = sig_answer.body.decode("ascii", "replace")
            changed = True
        try:
            verify(sums_text.encode("utf-8"), sig_text, keys)
        except SignatureError as error:
            raise SignatureError(f"{dir_url}sha256sums: {error.detail}") from error
        sums = parse_sha256sums(sums_text)
        if changed:
            _write_json_atomic(
                self._state_path(dir_url),
                {
                    "url": dir_url,
                    "etag": answer.etag,
                    "last_modified": answer.last_modified,
                    "sums": sums_text,
                    "sig": sig_text,
                },
            )
        return sums
