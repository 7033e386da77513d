"""A build as Redis stores it (:class:`BuildRecord`) and as the API answers it (:class:`BuildView`).

``asud.store.records`` reads and writes them; ``build.json`` (``asud.store.reindex``) is a
:class:`BuildRecord` on disk. Both are plain values: no Redis here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import attrs

from asud.build.stages import BuildStage, BuildStatus

__all__ = ["MAX_OUTPUT_CHARS", "BuildRecord", "BuildView", "clip_output", "pairs"]

#: Longest stdout/stderr kept on a build record (the full log is ``build.log`` in the files store).
MAX_OUTPUT_CHARS = 256 * 1024


def clip_output(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Keep the head and tail of a long log: errors are usually at the end."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[… {len(text) - limit} characters cut …]\n{text[-half:]}"


def _time(text: str | None) -> float | None:
    return float(text) if text else None


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


@attrs.frozen
class BuildRecord:
    """One build as stored under ``asud:build:<image key>`` (and, finished, in ``build.json``)."""

    image_key: str
    status: BuildStatus
    stage: BuildStage
    queued_at: float
    request_hash: str = ""
    #: The echo of the request that created (or last renewed) the build.
    request: dict[str, Any] = attrs.field(factory=dict)
    client: str = ""
    job: dict[str, Any] = attrs.field(factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    node: str = ""
    attempts: int = 0
    result: dict[str, Any] | None = None
    detail: str = ""
    error_kind: str | None = None
    stdout: str = ""
    stderr: str = ""
    bin_dir: str | None = None
    store_kind: str = "public"
    result_ttl: int = 0
    failure_ttl: int = 0
    expires_at: float | None = None
    #: The stream entry that stands for the build while it is queued or started.
    entry: str = ""
    seq: int = 0

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> BuildRecord:
        """From Redis' ``HGETALL`` (empty strings are absent values)."""
        get = fields.get
        return cls(
            image_key=fields["image_key"], status=BuildStatus(fields["status"]),
            stage=BuildStage(get("stage") or "init"), queued_at=float(get("queued_at") or 0),
            request_hash=get("request_hash") or "", request=_json(get("request")) or {},
            client=get("client") or "", job=_json(get("job")) or {}, started_at=_time(get("started_at")),
            finished_at=_time(get("finished_at")), node=get("node") or "",
            attempts=int(get("attempts") or 0), result=_json(get("result")), detail=get("detail") or "",
            error_kind=get("error_kind") or None, stdout=get("stdout") or "", stderr=get("stderr") or "",
            bin_dir=get("bin_dir") or None, store_kind=get("store_kind") or "public",
            result_ttl=int(get("result_ttl") or 0), failure_ttl=int(get("failure_ttl") or 0),
            expires_at=_time(get("expires_at")), entry=get("entry") or "", seq=int(get("seq") or 0),
        )

    def to_fields(self) -> dict[str, str]:
        """For ``HSET`` (``None`` becomes an empty string)."""
        fields: dict[str, str] = {}
        for field in attrs.fields(BuildRecord):
            value = getattr(self, field.name)
            if value is None:
                fields[field.name] = ""
            elif isinstance(value, dict):
                fields[field.name] = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, float):
                fields[field.name] = f"{value:.6f}"
            else:
                fields[field.name] = str(value)
        return fields


def pairs(flat: list[str]) -> dict[str, str]:
    """A Redis ``HGETALL`` reply as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@attrs.frozen
class BuildView:
    """Everything the API needs to answer for one request hash (clients-contract §6.3 to 6.5)."""

    request_hash: str
    image_key: str
    status: BuildStatus
    stage: BuildStage
    #: 0-based count of builds queued before this one; ``None`` unless queued.
    queue_position: int | None
    enqueued_at: datetime
    #: The normalised request echo (``request`` of every answer).
    request: dict[str, Any]
    detail: str
    #: For ``done``: flattened profiles.json + ``images``, ``manifest``, ``build_cmd``, ``build_at``, …
    result: dict[str, Any] | None
    stdout: str
    stderr: str
    bin_dir: str | None
    error_kind: str | None
    expires_at: datetime | None = None
    node: str | None = None
    attempts: int = 0

    @property
    def imagebuilder_status(self) -> str:
        """``X-Imagebuilder-Status`` / ``imagebuilder_status``: queued, a started stage, done or failed."""
        if self.status is BuildStatus.QUEUED:
            return "queued"
        if self.status is BuildStatus.STARTED:
            return self.stage.client_status
        return self.status.value

    @classmethod
    def of(cls, request_hash: str, echo: dict[str, Any], record: BuildRecord, rank: int | None) -> BuildView:
        status = record.status
        detail = {BuildStatus.QUEUED: "queued", BuildStatus.STARTED: "started", BuildStatus.DONE: "done"}.get(
            status, record.detail or "failed")
        return cls(
            request_hash=request_hash, image_key=record.image_key, status=status, stage=record.stage,
            queue_position=(rank or 0) if status is BuildStatus.QUEUED else None,
            enqueued_at=datetime.fromtimestamp(record.queued_at, UTC), request=echo, detail=detail,
            result=record.result if status is BuildStatus.DONE else None, stdout=record.stdout,
            stderr=record.stderr, bin_dir=record.bin_dir if status is BuildStatus.DONE else None,
            error_kind=record.error_kind, expires_at=_moment(record.expires_at), node=record.node or None,
            attempts=record.attempts,
        )
