"""One typed settings object, read from ``sysup.toml`` and ``SYSUP_*`` environment variables.

Values are passed into constructors; modules below the CLI/app level never read global settings.
Nested values use ``__`` in environment variables, e.g. ``SYSUP_DISTROS__OPENWRT__UPSTREAM_URL``.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: Where ``sysup`` looks for its configuration file unless ``SYSUP_CONFIG`` names another.
DEFAULT_CONFIG_FILE = Path("sysup.toml")


class PackageChange(BaseModel):
    """A package renamed, removed or added between releases (the ``package_changes`` table clients apply).

    ``source`` without ``target`` means *remove source* (what LuCI, owut and auc all do).
    """

    source: str | None = None
    target: str | None = None
    revision: int
    mandatory: bool = False


class DistroSettings(BaseModel):
    """A distribution served by this instance: its own download server and signing keys."""

    upstream_url: str = "https://downloads.openwrt.org"
    #: usign public keys (the two-line ``untrusted comment`` form or the bare base64 line) trusted for
    #: ``sha256sums.sig`` and ``Packages.sig``.
    public_keys: list[str] = Field(default_factory=list)
    alias: str = ""
    description: str = ""
    #: Other names clients use for this distribution (e.g. ``lede`` for 17.01).
    aliases: list[str] = Field(default_factory=list)
    #: Branches (``"24.10"``, ``"SNAPSHOT"``) to serve; empty means every branch found upstream.
    branches: list[str] = Field(default_factory=list)
    #: Oldest branch to serve (``"21.02"``); older releases in ``.versions.json`` are ignored.
    min_branch: str = "21.02"
    #: Serve ``SNAPSHOT`` and ``XX.YY-SNAPSHOT`` builds.
    snapshots: bool = True
    #: Branch offsets (``"24.10": 27990``) for package-change filtering; learned from upstream if absent.
    branch_off_rev: dict[str, int] = Field(default_factory=dict)
    #: Extra or replacement package changes; defaults are the OpenWrt table.
    package_changes: list[PackageChange] | None = None


class UpgradePolicySettings(BaseModel):
    """Which version an upgrade check offers (see ``asud.upgrades.policy``)."""

    #: Offer the newest point release of the installed branch before a newer branch.
    same_branch_first: bool = True
    #: Move one branch at a time (23.05 → 24.10, not straight to 25.12).
    next_branch_only: bool = False
    include_snapshots: bool = False
    include_rc: bool = False


class Settings(BaseSettings):
    """Every setting of a sysup instance. Defaults are for a single machine."""

    model_config = SettingsConfigDict(
        env_prefix="SYSUP_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    #: Holds the SQLite database, the SQLite queue, the ImageBuilder cache, the package cache and the store.
    data_dir: Path = Path("data")
    #: ``sqlite:///…`` (default: ``<data_dir>/sysup.db``) or ``postgresql://…``.
    database_url: str | None = None
    #: ``None`` → SqliteHuey in the data directory; ``redis://host:port/db`` → RedisHuey.
    queue_url: str | None = None
    #: Public base URL of this server, used for absolute links in legacy answers.
    public_url: str = ""
    server_contact: str = "admin@example.org"

    distros: dict[str, DistroSettings] = Field(default_factory=lambda: {"openwrt": DistroSettings()})
    default_distro: str = "openwrt"

    # -- build requests ---------------------------------------------------------------------------
    allow_defaults: bool = False
    #: Longest ``defaults`` script, in bytes of UTF-8 (v1 API).
    max_defaults_length: int = 20480
    #: Longest ``defaults`` for the 2017 API (answered with 420 above it).
    legacy_max_defaults_length: int = 10240
    max_custom_rootfs_size_mb: int = 1024
    max_packages: int = 500
    #: Extra repositories a request may name: URL prefixes (scheme+host+path prefix) that are allowed.
    repository_allow_list: list[str] = Field(default_factory=list)
    #: More queued builds than this → 529.
    max_pending_jobs: int = 200
    #: Queued builds one client may have at once.
    max_pending_per_client: int = 20
    #: Build POSTs per client per minute (0 disables the limit).
    rate_limit_per_minute: int = 0

    upgrade_policy: UpgradePolicySettings = Field(default_factory=UpgradePolicySettings)

    # -- builds -----------------------------------------------------------------------------------
    sandbox: Literal["bwrap", "none"] = "bwrap"
    #: When the worker runs as root: the uid (and gid) sandboxed builds run as. It owns each workspace but
    #: not the cache files hard-linked into it, so a build cannot chmod and rewrite them. Use an unused uid.
    sandbox_uid: int = 65534
    build_timeout: timedelta = timedelta(minutes=10)
    #: Largest total output of one build (images, logs) in bytes.
    build_output_limit: int = 2 * 1024**3
    #: A worker renews its lease this often; a build whose lease is older than ``lease_timeout`` is re-queued.
    lease_renew_interval: timedelta = timedelta(seconds=10)
    lease_timeout: timedelta = timedelta(seconds=60)
    #: Embedded worker threads of ``sysup serve``; ``sysup worker --workers``.
    workers: int = 1

    # -- caches and retention ---------------------------------------------------------------------
    ib_cache_max_bytes: int = 20 * 1024**3
    package_cache_max_bytes: int = 20 * 1024**3
    store_max_bytes: int = 100 * 1024**3
    ttl_versioned: timedelta = timedelta(days=7)
    ttl_unversioned: timedelta = timedelta(hours=6)
    ttl_defaults: timedelta = timedelta(hours=6)
    ttl_failure: timedelta = timedelta(hours=1)
    catalog_refresh_interval: timedelta = timedelta(minutes=15)
    stats_retention: timedelta = timedelta(days=90)

    # -- upstream fetching ------------------------------------------------------------------------
    fetch_timeout: float = 30.0
    fetch_retries: int = 3

    @field_validator("distros")
    @classmethod
    def _lowercase_distro_names(cls, value: dict[str, DistroSettings]) -> dict[str, DistroSettings]:
        return {name.lower(): distro for name, distro in value.items()}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = Path(os.environ.get("SYSUP_CONFIG", DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file),
        )

    # -- derived paths ----------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'sysup.db').resolve()}"

    @property
    def ib_cache_dir(self) -> Path:
        return self.data_dir / "imagebuilders"

    @property
    def package_cache_dir(self) -> Path:
        return self.data_dir / "packages"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def workspace_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def fetch_cache_dir(self) -> Path:
        return self.data_dir / "upstream-cache"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config_file`` (else ``SYSUP_CONFIG``/``sysup.toml``), environment, ``overrides``."""
    if config_file is not None:
        os.environ["SYSUP_CONFIG"] = str(config_file)
    return Settings(**overrides)
