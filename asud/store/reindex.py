"""``build.json``, the files store's record of a finished build, and the re-index that reads it back.

Redis holds the build records, but the files store is what lasts: a Redis that was flushed, lost its
append-only file or was replaced must not forget a single finished build. So every finished build leaves
``<bin_dir>/build.json`` beside its images and ``build.log`` (the build pool writes it with
:func:`write_build_json` right after ``BuildRecords.done``/``failed``), and a starting daemon puts every
finished build that Redis lacks back (:func:`reindex`, run by :class:`ReindexService`).

``build.json`` (UTF-8, one JSON object; times ISO 8601 in UTC, ``null`` when absent)::

    format          1
    image_key       what was built (64 hex)
    request_hash    the request that created the build; its request record is restored too
    request         that request's normalised echo (``request`` of every answer)
    client          who asked (the per-client queue bound's name for it)
    status, stage   "done" or "failed" (both)
    detail          "done", or the failure text clients show
    error_kind      the error class of a failure ("BuildError", "ImageTooBig", "BuildAbandoned", …) or null
    queued_at, started_at, finished_at, expires_at
                    when it was queued, started, finished, and until when the result is answered fresh
    node            the daemon that built it (scale-out: who holds the files when the store is not shared)
    attempts        how many times a daemon started it
    bin_dir         where its files are (``/store/<bin_dir>/``); ``store_kind`` "public" or "private"
    result_ttl, failure_ttl
                    seconds a success / a failure is answered before the next request rebuilds it
    job             what the pool built from (``ValidatedRequest.job()``)
    result          for "done": the answer's fields (flattened profiles.json, images, manifest, …); else null
    stdout, stderr  the output kept on the record (clipped; the whole of it is ``build.log``)

A build whose answer went stale longer ago than the records keep stale answers is not restored: Redis
would have forgotten it by now anyway, and the next request rebuilds it.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from typing import Any

import attrs
from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from asud.build.stages import BuildStage, BuildStatus
from asud.store.build_record import BuildRecord
from asud.store.files import Store, is_valid_bin_dir
from asud.store.records import (
    BIN_DIRS_KEY,
    IMAGE_INDEX_KEY,
    REQUEST_INDEX_KEY,
    REQUEST_KEEP_SECONDS,
    STALE_KEEP_SECONDS,
    build_key,
    request_key,
)
from asud.store.redis import Redis, Script

__all__ = ["BUILD_JSON", "ReindexService", "read_build_json", "read_build_jsons", "reindex",
           "to_build_json", "write_build_json"]

log = Logger()

BUILD_JSON = "build.json"
FORMAT = 1
_TIMES = ("queued_at", "started_at", "finished_at", "expires_at")
_LEFT_OUT = ("entry", "seq")

#: KEYS: build, request, bin_dirs, request index, image index. ARGV: record expiry (s), request keep (s),
#: expires_at, bin_dir, request_hash, image_key, echo, client, queued_at, then the record's field/value pairs.
#: Returns 1 when the build record was missing and is restored.
_RESTORE = Script("""
local restored = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 10))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[4]) end
  if redis.call('HGET', KEYS[1], 'status') == 'done' then redis.call('ZADD', KEYS[5], 0, ARGV[6]) end
  restored = 1
end
if ARGV[5] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[2], 'request_hash', ARGV[5], 'image_key', ARGV[6], 'request', ARGV[7],
    'client', ARGV[8], 'enqueued_at', ARGV[9])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  redis.call('ZADD', KEYS[4], 0, ARGV[5])
end
return restored
""")


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def _seconds(text: Any) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def to_build_json(record: BuildRecord) -> dict[str, Any]:
    """The ``build.json`` document of a finished record."""
    document: dict[str, Any] = {"format": FORMAT}
    for name, value in attrs.asdict(record, recurse=False).items():
        if name in _LEFT_OUT:
            continue
        if name in _TIMES:
            value = _iso(value)
        elif name in ("status", "stage"):
            value = str(value)
        document[name] = value
    return document


def read_build_json(document: dict[str, Any]) -> BuildRecord:
    """The record in a ``build.json`` document (``ValueError``/``KeyError`` when it is not one)."""
    if document.get("format") != FORMAT:
        raise ValueError(f"unknown build.json format {document.get('format')!r}")
    fields = {name: value for name, value in document.items() if name != "format"}
    for name in _TIMES:
        fields[name] = _seconds(fields.get(name))
    fields["status"] = BuildStatus(fields["status"])
    fields["stage"] = BuildStage(fields["stage"])
    record = BuildRecord(**fields)
    if not record.status.is_finished:
        raise ValueError(f"build.json of a build that is {record.status.value}")
    return record


def write_build_json(files: Store, bin_dir: str, record: BuildRecord) -> str:
    """Store ``record`` as ``<bin_dir>/build.json`` (blocking file I/O: call it in a thread); its sha256."""
    if not record.status.is_finished:
        raise ValueError(f"only finished builds have a build.json, not a {record.status.value} one")
    text = json.dumps(to_build_json(record), ensure_ascii=False, indent=1, sort_keys=True)
    return files.write_text(bin_dir, BUILD_JSON, text + "\n")


def read_build_jsons(files: Store) -> list[BuildRecord]:
    """Every readable ``build.json`` of the store (private bin_dirs included), newest finish first.
    Blocking: run it in a thread."""
    found: list[BuildRecord] = []
    for entry in os.scandir(files.root):
        if not entry.is_dir() or not is_valid_bin_dir(entry.name):
            continue
        path = os.path.join(entry.path, BUILD_JSON)
        try:
            with open(path, encoding="utf-8") as handle:
                found.append(read_build_json(json.load(handle)))
        except FileNotFoundError:
            continue
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warn("re-index: {path} is not a build record ({error})", path=path, error=error)
    return sorted(found, key=lambda record: record.finished_at or 0.0, reverse=True)


@defer.inlineCallbacks
def reindex(redis: Redis, files: Store, *, stale_keep: float = STALE_KEEP_SECONDS,
            clock: IReactorTime | None = None) -> Any:
    """Put every finished build of ``files`` that Redis lacks back into Redis; how many were restored."""
    if clock is None:
        from twisted.internet import reactor

        clock = reactor  # type: ignore[assignment]
    records = yield threads.deferToThread(read_build_jsons, files)
    now = clock.seconds()  # type: ignore[union-attr]
    restored = 0
    for record in records:
        keep = (record.expires_at or now) + stale_keep - now
        if keep <= 0:
            continue
        fields = record.to_fields()
        pairs = [item for pair in fields.items() for item in pair]
        echo = json.dumps(record.request, separators=(",", ":"))
        args = [max(1, math.ceil(keep)), REQUEST_KEEP_SECONDS, fields["expires_at"] or "0",
                record.bin_dir or "", record.request_hash, record.image_key, echo, record.client,
                fields["queued_at"], *pairs]
        keys = [build_key(record.image_key), request_key(record.request_hash or "-"), BIN_DIRS_KEY,
                REQUEST_INDEX_KEY, IMAGE_INDEX_KEY]
        restored += yield redis.script(_RESTORE, keys, args)
    if restored:
        log.info("re-index: {restored} finished builds put back into Redis from {root}", restored=restored,
                 root=files.root)
    return restored


class ReindexService(Service):
    """Runs :func:`reindex` once when the daemon starts; ``start()`` fires when it is done."""

    name = "reindex"

    def __init__(self, redis: Redis, files: Store, *, stale_keep: float = STALE_KEEP_SECONDS) -> None:
        self.redis = redis
        self.files = files
        self.stale_keep = stale_keep
        self.ready: defer.Deferred[int] | None = None

    def start(self) -> defer.Deferred[int]:
        return reindex(self.redis, self.files, stale_keep=self.stale_keep)  # type: ignore[no-any-return]

    def startService(self) -> None:
        Service.startService(self)
        self.ready = self.start()
