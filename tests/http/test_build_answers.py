"""BuildView → status, body and headers for every state (clients-contract §6.3 to 6.5, §6.7 items 1-4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from asud.build.stages import BuildStage, BuildStatus
from asud.http.build_answers import build_body, render_build
from asud.store.build_record import BuildView

HASH = "3f" * 32
REQUEST = {"version": "24.10.4", "version_code": "", "rootfs_size_mb": None, "defaults": None}
#: The values old and new LuCI both know (a started 202 with another value freezes LuCI's dialog).
LUCI_SAFE = {"init", "calculate_packages_hash", "building_image"}


def view(status: BuildStatus, stage: BuildStage = BuildStage.INIT, **changes: Any) -> BuildView:
    values: dict[str, Any] = {
        "request_hash": HASH,
        "image_key": "ik",
        "status": status,
        "stage": stage,
        "queue_position": None,
        "enqueued_at": datetime(2025, 2, 4, 10, 0, 0, 123456, tzinfo=UTC),
        "request": REQUEST,
        "detail": "",
        "result": None,
        "stdout": "out",
        "stderr": "err",
        "bin_dir": None,
        "error_kind": None,
    }
    values.update(changes)
    return BuildView(**values)


def test_done_is_200_with_the_result_flattened_and_the_request_echo() -> None:
    result = {"id": "generic", "images": [{"name": "a.img.gz", "sha256": "x"}], "manifest": {"luci": "1"}}
    status, body, headers = build_body(view(BuildStatus.DONE, BuildStage.DONE, result=result, bin_dir=HASH))
    assert status == 200 and body["status"] == 200
    assert body["detail"] == "done" and body["imagebuilder_status"] == "done"
    assert body["request"] == REQUEST and body["request_hash"] == HASH and body["bin_dir"] == HASH
    assert body["enqueued_at"].startswith("2025-02-04T10:00:00.123456")
    assert body["images"] == result["images"] and body["manifest"] == result["manifest"]
    assert (body["stdout"], body["stderr"]) == ("out", "err")
    assert headers == {"X-Imagebuilder-Status": "done", "X-Queue-Position": "0"}


def test_queued_is_202_with_the_position_and_nothing_else() -> None:
    status, body, headers = build_body(view(BuildStatus.QUEUED, queue_position=3))
    assert status == 202
    assert set(body) == {"status", "detail", "queue_position", "request_hash", "enqueued_at"}
    assert (body["status"], body["detail"], body["queue_position"]) == (202, "queued", 3)
    assert headers == {"X-Imagebuilder-Status": "queued", "X-Queue-Position": "3"}


def test_started_has_no_queue_position_and_a_status_luci_knows() -> None:
    for stage in BuildStage:
        if stage in (BuildStage.DONE, BuildStage.FAILED):
            continue
        status, body, headers = build_body(view(BuildStatus.STARTED, stage))
        assert status == 202 and body["status"] == 202 and body["detail"] == "started"
        assert "queue_position" not in body
        assert body["imagebuilder_status"] in LUCI_SAFE
        assert body["request"] == REQUEST and body["request_hash"] == HASH
        assert headers == {"X-Imagebuilder-Status": body["imagebuilder_status"], "X-Queue-Position": "0"}


def test_failed_is_500_with_a_string_detail_and_the_logs() -> None:
    message = "Error: Received incorrect version r1-a (requested r2-b)"
    status, body, headers = build_body(
        view(BuildStatus.FAILED, BuildStage.FAILED, detail=message, error_kind="RevisionMismatch")
    )
    assert status == 500 and body["status"] == 500
    assert body["detail"] == message and body["imagebuilder_status"] == "failed"
    assert body["request"] == REQUEST and (body["stdout"], body["stderr"]) == ("out", "err")
    assert headers == {"X-Imagebuilder-Status": "failed", "X-Queue-Position": "0"}
    assert build_body(view(BuildStatus.FAILED, detail="init"))[1]["detail"] == "Build failed"


def test_rendered_bytes_are_the_body() -> None:
    rendered = render_build(view(BuildStatus.QUEUED, queue_position=0))
    assert rendered.status_code == 202
    assert json.loads(rendered.body)["queue_position"] == 0


def test_timestamps_are_iso_8601() -> None:
    moment = datetime(2025, 2, 4, 10, 0, 0, 123456, tzinfo=UTC)
    body = build_body(view(BuildStatus.QUEUED, enqueued_at=moment.timestamp()))[1]
    assert body["enqueued_at"].startswith("2025-02-04T10:00:00.123456")
