"""Where a build is in its life (``BuildStatus``) and in its work (``BuildStage``).

Clients see the stage as ``imagebuilder_status`` while a build is started. Old LuCI (≤ 2024-07) throws on
any value outside ``init, download_imagebuilder, unpack_imagebuilder, calculate_packages_hash,
building_image`` and new LuCI's table is not the same list, so only the values both certainly know are sent
(clients-contract §6.4): ``init``, ``calculate_packages_hash``, ``building_image``. The real stage stays
available as ``BuildView.stage`` for our own pages.
"""

from __future__ import annotations

from enum import StrEnum


class BuildStatus(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"

    @property
    def is_pending(self) -> bool:
        """Still to finish (queued or being built)."""
        return self in (BuildStatus.QUEUED, BuildStatus.STARTED)

    @property
    def is_finished(self) -> bool:
        return self in (BuildStatus.DONE, BuildStatus.FAILED)

    @property
    def is_queued(self) -> bool:
        return self is BuildStatus.QUEUED

    @property
    def is_started(self) -> bool:
        return self is BuildStatus.STARTED

    @property
    def is_done(self) -> bool:
        return self is BuildStatus.DONE

    @property
    def is_failed(self) -> bool:
        return self is BuildStatus.FAILED


class BuildStage(StrEnum):
    INIT = "init"
    DOWNLOAD_IMAGEBUILDER = "download_imagebuilder"
    UNPACK_IMAGEBUILDER = "unpack_imagebuilder"
    VALIDATE_REVISION = "validate_revision"
    VALIDATE_MANIFEST = "validate_manifest"
    CALCULATE_PACKAGES_HASH = "calculate_packages_hash"
    BUILDING_IMAGE = "building_image"
    SIGNING_IMAGES = "signing_images"
    DONE = "done"
    FAILED = "failed"

    @property
    def client_status(self) -> str:
        """The ``imagebuilder_status`` shown to clients for this stage (old and new LuCI both know it)."""
        return _CLIENT_STATUS[self]


_CLIENT_STATUS: dict[BuildStage, str] = {
    BuildStage.INIT: "init",
    BuildStage.DOWNLOAD_IMAGEBUILDER: "init",
    BuildStage.UNPACK_IMAGEBUILDER: "init",
    BuildStage.VALIDATE_REVISION: "calculate_packages_hash",
    BuildStage.VALIDATE_MANIFEST: "calculate_packages_hash",
    BuildStage.CALCULATE_PACKAGES_HASH: "calculate_packages_hash",
    BuildStage.BUILDING_IMAGE: "building_image",
    BuildStage.SIGNING_IMAGES: "building_image",
    BuildStage.DONE: "done",
    BuildStage.FAILED: "failed",
}
