"""Build-test factories: a real SQLite database and validated requests built without a catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from sysup.build_requests.hashing import defaults_hash, image_key, request_hash
from sysup.build_requests.models import BuildRequest
from sysup.build_requests.normalise import normalise_request
from sysup.build_requests.validate import ValidatedRequest
from sysup.builds import models as _models
from sysup.database import Base, create_engine_for, session_factory


def make_sessions(tmp_path: Path, url: str | None = None) -> sessionmaker[Session]:
    """A fresh SQLite file (or ``url``) with the build tables (until the lead adds the Alembic migration)."""
    engine = create_engine_for(url or f"sqlite:///{tmp_path / 'sysup.db'}")
    Base.metadata.create_all(engine, tables=[_models.Build.__table__, _models.BuildRequestRecord.__table__])
    return session_factory(engine)


def validated(**fields: Any) -> ValidatedRequest:
    """A request as ``validate_request`` would return it, for an x86/64 generic build."""
    body = {"version": "24.10.4", "target": "x86/64", "profile": "generic", "packages": ["luci"], **fields}
    request = normalise_request(BuildRequest.model_validate(body))
    packages = sorted(request.packages)
    the_hash = request_hash(request)
    digest = defaults_hash(request.defaults)
    return ValidatedRequest(
        request=request,
        request_hash=the_hash,
        image_key=image_key(
            distro=request.distro, version=request.version, version_code=request.version_code or "r1",
            target=request.target, profile=request.profile, packages=packages,
            packages_versions=request.packages_versions, defaults=request.defaults,
            rootfs_size_mb=request.rootfs_size_mb, filesystem=request.filesystem,
            repositories=request.repositories, repositories_mode=request.repositories_mode,
            repository_keys=request.repository_keys,
        ),
        bin_dir=f"{the_hash}-{digest}" if digest else the_hash,
        version_info=None,
        target_info=None,
        profile=request.profile,
        build_packages=tuple(request.packages),
        manifest=None,
        version_code=request.version_code or "r1",
    )
