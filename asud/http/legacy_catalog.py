"""The 2017 API's read-only listings: images and manifests by hash, a build's files, distributions,
versions (honouring ``?distro=``), device search and a device's default packages.

Errors have the 2017 shape ``{"error", "detail"}`` (``asud.http.legacy.legacy_error``); hash paths take the
full hash or an unambiguous 12/15-character prefix, except images built with ``defaults``, which answer only
to the full hash. Image and manifest lookups read the build records and the statistics in Redis; a build's
files are hashed in a thread (they can be large); the rest is the in-memory catalog.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from twisted.internet.threads import deferToThread
from twisted.web.iweb import IRequest

from asud.build.stages import BuildStatus
from asud.errors import BadRequest, NotFound, Unavailable
from asud.http.legacy import HASH_PATTERN, legacy_app, pick_sysupgrade, profile_title, titles_of
from asud.http.responses import json_answer
from asud.http.state import AsudApp
from asud.store.files import Store, is_valid_bin_dir
from asud.store.stats_keys import manifest_hash
from asud.upgrades.request import MissingField, normalise_version, resolve_distro
from asud.upstream.records import ProfileEntry
from asud.upstream.version_order import branch_of

__all__ = ["MODELS_LIMIT", "LegacyCatalog", "image_packages"]

#: Most entries ``/api/models`` answers.
MODELS_LIMIT = 50
_MANIFEST_HASH = re.compile(r"\A[0-9a-f]{64}\Z")


def image_packages(default_packages: tuple[str, ...], device_packages: tuple[str, ...]) -> list[str]:
    """Default packages plus the device's, with ``-name`` removals applied, sorted."""
    names = [*default_packages, *device_packages]
    removed = {name[1:] for name in names if name.startswith("-")}
    return sorted({name for name in names if not name.startswith("-") and name not in removed})


def _query(request: IRequest, name: str, *, required: bool = True) -> str:
    """The (last) value of query parameter ``name``; ``MissingField`` when required and absent or blank."""
    values = request.args.get(name.encode("ascii")) or [b""]
    value = values[-1].decode("utf-8", "replace")
    if required:
        value = value.strip()
        if not value:
            raise MissingField(name)
    return value


def _moment(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def describe_image(build: Any) -> dict[str, Any]:
    """``/api/image`` of a finished build record (``job``, ``result``, ``started_at``, ``finished_at``)."""
    job, result = dict(build.job or {}), dict(build.result or {})
    target, _, subtarget = str(job.get("target", "")).partition("/")
    images = list(result.get("images") or [])
    chosen = pick_sysupgrade(images)
    manifest = result.get("manifest")
    entry = ProfileEntry(id=str(job.get("profile", "")), titles=tuple(result.get("titles") or []))
    started, finished = _moment(build.started_at), _moment(build.finished_at)
    defaults = job.get("defaults")
    return {
        "image_hash": build.image_key,
        "distro": job.get("distro"),
        "version": job.get("version"),
        "target": target,
        "subtarget": subtarget,
        "profile": job.get("profile"),
        "model": profile_title(entry),
        "manifest_hash": manifest_hash(manifest) if isinstance(manifest, Mapping) else None,
        "defaults_hash": hashlib.sha256(defaults.encode()).hexdigest() if defaults else None,
        "build_date": finished.strftime("%Y-%m-%dT%H:%M:%SZ") if finished else None,
        "build_seconds": int((finished - started).total_seconds()) if finished and started else None,
        "sysupgrade": chosen["name"] if chosen else None,
        "files": [image.get("name") for image in images],
    }


def list_files(store: Store, bin_dir: str) -> list[dict[str, Any]]:
    """Every file of ``bin_dir`` with size and sha256 (blocking: run in a thread)."""
    listing = []
    if is_valid_bin_dir(bin_dir) and store.exists(bin_dir):
        for name, size in sorted(store.files(bin_dir).items()):
            with store.resolve(bin_dir, name).open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            listing.append({"name": name, "size": size, "sha256": digest})
    if not listing:
        raise NotFound(f"Unknown build: {bin_dir}")
    return listing


class LegacyCatalog:
    """``GET /api/{image/{h},manifest/{h},files/{bin_dir},distros,versions,models,packages_image}``."""

    app = legacy_app()

    def __init__(self, state: AsudApp) -> None:
        self.state = state

    def resource(self) -> Any:
        return self.app.resource()

    # -- images, manifests, files --------------------------------------------------------------------------
    @app.route("/api/image/<string:image_hash>", methods=["GET"])
    async def get_image(self, request: IRequest, image_hash: str) -> bytes:
        """404 for unknown hashes; images built with ``defaults`` answer only to their full hash."""
        prefix = image_hash.lower()
        if not HASH_PATTERN.match(prefix):
            raise NotFound(f"Unknown image hash: {prefix}")
        records = self.state.build_records()
        keys = await records.find_image_keys(prefix, limit=2)
        build = await records.build(keys[0]) if len(keys) == 1 else None
        if (
            build is None
            or BuildStatus(build.status) is not BuildStatus.DONE
            or (build.store_kind == "private" and build.image_key != prefix)
        ):
            raise NotFound(f"Unknown image hash: {prefix}")
        return json_answer(request, describe_image(build))

    @app.route("/api/manifest/<string:digest>", methods=["GET"])
    async def get_manifest(self, request: IRequest, digest: str) -> bytes:
        """Every installed package of an image, by the sha256 of its sorted ``name - version`` lines."""
        digest = digest.lower()
        if not _MANIFEST_HASH.match(digest):
            raise NotFound(f"Unknown manifest hash: {digest}")
        if self.state.stats_queries is None:
            raise Unavailable("Statistics are not available, retry later")
        records = self.state.build_records()
        for key in await self.state.stats_queries.image_keys_for_manifest(digest):
            build = await records.build(key)
            if build is None or BuildStatus(build.status) is not BuildStatus.DONE:
                continue
            manifest = (build.result or {}).get("manifest")
            if isinstance(manifest, Mapping) and manifest_hash(manifest) == digest:
                return json_answer(request, dict(sorted(manifest.items())))
        raise NotFound(f"Unknown manifest hash: {digest}")

    @app.route("/api/files/<string:bin_dir>", methods=["GET"])
    async def get_files(self, request: IRequest, bin_dir: str) -> bytes:
        """Every file of a build, with size and sha256."""
        return json_answer(request, await deferToThread(list_files, self.state.files, bin_dir))

    # -- catalog listings ----------------------------------------------------------------------------------
    @app.route("/api/distros", methods=["GET"])
    def get_distros(self, request: IRequest) -> bytes:
        """The distributions this server builds."""
        catalog = self.state.current_catalog()
        answer = []
        for name, distro in self.state.config.distros.items():
            latest = catalog.latest(name)
            answer.append({
                "name": name,
                "alias": distro.alias or name,
                "latest": latest[0] if latest else None,
                "description": distro.description,
            })
        return json_answer(request, answer)

    @app.route("/api/versions", methods=["GET"])
    def get_versions(self, request: IRequest) -> bytes:
        """Versions, of one distribution with ``?distro=``."""
        config = self.state.config
        catalog = self.state.current_catalog()
        distro = _query(request, "distro", required=False)
        names = list(config.distros)
        if distro:
            names = [resolve_distro(distro, config.distros, config.default_distro)]
        answer = []
        for name in names:
            for branch in catalog.branches(name).values():
                if not branch.enabled:
                    continue
                for version in branch.versions:
                    answer.append({
                        "distro": name,
                        "version": version,
                        "alias": "",
                        "description": "",
                        "snapshots": "SNAPSHOT" in version.upper(),
                    })
        return json_answer(request, answer)

    @app.route("/api/models", methods=["GET"])
    def get_models(self, request: IRequest) -> bytes:
        """``?distro=&version=&model_search=``: devices whose title or profile id contains the search
        (case-insensitive), at most 50; 400 without distro or version."""
        config = self.state.config
        distro_name, version = _query(request, "distro"), normalise_version(_query(request, "version"))
        wanted = _query(request, "model_search", required=False).lower()
        distro = resolve_distro(distro_name, config.distros, config.default_distro)
        catalog = self.state.current_catalog()
        branch = catalog.branches(distro).get(branch_of(version))
        if branch is None or version not in branch.versions:
            raise BadRequest(f"Unsupported version: {version}")
        found: list[dict[str, Any]] = []
        for target in branch.targets:
            info = catalog.target(distro, version, target)
            if info is None:
                continue
            board, _, subtarget = target.partition("/")
            for entry in info.profiles.values():
                if wanted in entry.id.lower() or any(wanted in title.lower() for title in titles_of(entry)):
                    found.append({
                        "distro": distro,
                        "version": version,
                        "target": board,
                        "subtarget": subtarget,
                        "profile": entry.id,
                        "model": profile_title(entry),
                    })
                    if len(found) >= MODELS_LIMIT:
                        return json_answer(request, found)
        return json_answer(request, found)

    @app.route("/api/packages_image", methods=["GET"])
    def get_packages_image(self, request: IRequest) -> bytes:
        """``?distro=&version=&target=&subtarget=&profile=``: default packages of the target plus the
        profile's, ``-pkg`` removals applied; 400 on a missing parameter, 404 on an unknown profile."""
        config = self.state.config
        distro = resolve_distro(_query(request, "distro"), config.distros, config.default_distro)
        version = normalise_version(_query(request, "version"))
        target = f"{_query(request, 'target')}/{_query(request, 'subtarget')}"
        profile = _query(request, "profile")
        catalog = self.state.current_catalog()
        info = catalog.target(distro, version, target)
        entry = catalog.profile(distro, version, target, profile) if info is not None else None
        if info is None or entry is None:
            raise NotFound(f"Unknown profile: {distro} {version} {target} {profile}")
        packages = image_packages(info.default_packages, entry.device_packages)
        return json_answer(request, {"packages": packages})
