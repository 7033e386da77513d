"""Response models, for the OpenAPI document at ``/docs`` only.

Routes answer with pre-rendered orjson bytes (hot paths), so these models describe the answers without
validating them; each lists the keys clients rely on (clients-contract §6.3 to 6.6) and allows more.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorAnswer(_Open):
    """Every error: a string ``detail`` (never a list) and the status code repeated in the body."""

    status: int = Field(examples=[400])
    detail: str = Field(
        examples=[
            "Unsupported profile: foo. The requested profile was either dropped or never "
            "existed. Please check the forums for more information."
        ]
    )
    title: str | None = None


class ImageAnswer(_Open):
    name: str
    type: str
    filesystem: str | None = None
    sha256: str = Field(description="sha256 of the exact bytes served from /store")
    sha256_unsigned: str


class BuildDone(_Open):
    """200: the built ``profiles.json`` flattened with its profile, plus the request echo."""

    status: int = Field(200, examples=[200])
    detail: str = Field("done", examples=["done"])
    imagebuilder_status: str = "done"
    request_hash: str
    bin_dir: str
    enqueued_at: str
    request: dict[str, Any]
    id: str
    target: str
    version_number: str
    version_code: str
    build_at: str
    titles: list[dict[str, str]]
    images: list[ImageAnswer]
    manifest: dict[str, str]
    build_cmd: list[str]
    stdout: str
    stderr: str


class BuildQueued(_Open):
    """202 while queued; the only answer with ``queue_position``."""

    status: int = Field(202, examples=[202])
    detail: str = Field("queued", examples=["queued"])
    queue_position: int
    request_hash: str
    enqueued_at: str


class BuildStarted(_Open):
    """202 while building; ``imagebuilder_status`` is one LuCI (old and new) knows."""

    status: int = Field(202, examples=[202])
    detail: str = Field("started", examples=["started"])
    imagebuilder_status: str = Field(examples=["building_image"])
    request_hash: str
    enqueued_at: str
    request: dict[str, Any]
    stdout: str
    stderr: str


class BuildFailed(_Open):
    """500 when the build failed; ``detail`` says why, the logs say the rest."""

    status: int = Field(500, examples=[500])
    detail: str = Field(examples=["Error: Received incorrect version r1 (requested r2)"])
    imagebuilder_status: str = "failed"
    request_hash: str
    enqueued_at: str
    request: dict[str, Any]
    stdout: str
    stderr: str


class BranchAnswer(_Open):
    name: str
    enabled: bool
    snapshot: bool
    path: str = Field(examples=["releases/{version}", "snapshots"])
    path_packages: str = "DEPRECATED"
    branch_off_rev: int | None = None
    versions: list[str]
    targets: dict[str, str]
    package_changes: list[dict[str, Any]]


class ServerAnswer(_Open):
    version: str
    contact: str
    allow_defaults: bool
    repository_allow_list: list[str]
    max_custom_rootfs_size_mb: int
    max_defaults_length: int


class OverviewAnswer(_Open):
    latest: list[str]
    upstream_url: str
    server: ServerAnswer
    branches: dict[str, BranchAnswer]


class LatestAnswer(_Open):
    latest: list[str]


class RevisionAnswer(_Open):
    revision: str = Field(examples=["r28427-6df0e3d02a"])


class StatsAnswer(_Open):
    queue_length: int


class ProfileAnswer(_Open):
    """``profiles.json`` without ``profiles``, merged with the one profile, plus ``id`` and ``build_at``."""

    metadata_version: int = 1
    id: str
    target: str
    arch_packages: str
    version_code: str
    version_number: str
    images: list[ImageAnswer]
    build_at: str | None = None


class TargetIndexAnswer(_Open):
    architecture: str
    packages: dict[str, str]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorAnswer, "description": "Invalid request (schema errors too: 400, string detail)"},
    404: {"model": ErrorAnswer, "description": "Not found"},
}
