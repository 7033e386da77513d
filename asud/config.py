"""One typed settings object: a TOML file, overridden by ``ASUD_*`` environment variables.

``load()`` finds the file (its argument, else ``$ASUD_CONFIG``, else ``/etc/asud/asud.toml`` when it
exists), applies ``ASUD_*`` variables (``__`` separates nested keys: ``ASUD_BUILD__WORKERS=2``,
``ASUD_DISTROS__OPENWRT__UPSTREAM_URL=…``), then keyword overrides, and builds the attrs classes below.
A value that does not fit — a wrong type, a bad duration, a worker count of 0, an unknown key — is refused
with :class:`ConfigError` naming the key and the reason, so the daemon never starts half-configured.

The object is passed into constructors; nothing below the service and the commands reads settings from
anywhere else. ``etc/asud.toml`` lists every key with its default.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

#: Read when neither an argument nor ``ASUD_CONFIG`` names a file (and only if it exists).
SYSTEM_CONFIG_FILE = Path("/etc/asud/asud.toml")
ENV_PREFIX = "ASUD_"
OPENWRT_KEY = "RWTTEMbygz6X95lKDAulctZy3aj15823THXfyrfXgwGbxZlXBd2brNcw"

__all__ = [
    "BuildSettings",
    "CacheSettings",
    "CatalogSettings",
    "ClusterSettings",
    "Config",
    "ConfigError",
    "DistroSettings",
    "HttpSettings",
    "PackageChange",
    "RedisSettings",
    "RequestSettings",
    "RetentionSettings",
    "StoreSettings",
    "UpgradePolicySettings",
    "UpstreamSettings",
    "load",
    "parse_duration",
    "to_toml",
]


class ConfigError(ValueError):
    """A setting that cannot be used; the message starts with its dotted key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason


# -- value checks ---------------------------------------------------------------------------------------
_FIXED_TCP_PORT = re.compile(r"^(?:tcp6?|ssl):(?:port=)?(\d+)(?::|$)")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string such as ``"90s"``, ``"10m"``, ``"6h"``, ``"7d"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"expected a duration such as 30, \"90s\", \"10m\", \"6h\" or \"7d\", got {value!r}")


def _at_least(minimum: float) -> Any:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if value < minimum:
            raise ValueError(f"must be at least {minimum:g}, got {value!r}")

    return check


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")


def _duration_field(default: float, doc: str, *, minimum: float | None = None) -> Any:
    validator = _positive if minimum is None else _at_least(minimum)
    return attrs.field(default=default, converter=parse_duration, validator=validator,
                       metadata={"doc": doc, "duration": True})


def _field(default: Any, doc: str, **kwargs: Any) -> Any:
    if isinstance(default, list | dict):
        def factory(value: Any = default) -> Any:
            return type(value)(value)

        return attrs.field(factory=factory, metadata={"doc": doc}, **kwargs)
    return attrs.field(default=default, metadata={"doc": doc}, **kwargs)


# -- sections -------------------------------------------------------------------------------------------
@attrs.frozen
class PackageChange:
    """A package renamed, removed or added between releases (``package_changes`` that clients apply).

    ``source`` without ``target`` means *remove source* (what LuCI, owut and auc all do).
    """

    revision: int
    source: str | None = None
    target: str | None = None
    mandatory: bool = False

    def to_json(self) -> dict[str, Any]:
        """The entry as ``/json/v1/overview.json`` lists it (absent values left out)."""
        data: dict[str, Any] = {}
        if self.source is not None:
            data["source"] = self.source
        if self.target is not None:
            data["target"] = self.target
        data["revision"] = self.revision
        data["mandatory"] = self.mandatory
        return data


@attrs.frozen
class DistroSettings:
    """A distribution served by this daemon: its own download server and signing keys."""

    upstream_url: str = _field("https://downloads.openwrt.org", "download server (http(s):// or file://)")
    public_keys: list[str] = _field(
        [], "usign public keys trusted for sha256sums.sig and Packages.sig (the base64 line)")
    alias: str = _field("", "display name")
    description: str = _field("", "one line shown in /api/distros")
    aliases: list[str] = _field([], "other names clients use for it (e.g. lede)")
    branches: list[str] = _field([], "branches to serve (\"24.10\", \"SNAPSHOT\"); empty: every branch")
    min_branch: str = _field("21.02", "oldest branch served; older releases upstream are skipped (and said)")
    snapshots: bool = _field(True, "serve SNAPSHOT and XX.YY-SNAPSHOT")
    branch_off_rev: dict[str, int] = _field({}, "revision each branch split off (learned upstream if absent)")
    package_changes: list[PackageChange] | None = _field(
        None, "package renames/removals; absent: the OpenWrt table")

    @upstream_url.validator
    def _check_url(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if not value.startswith(("http://", "https://", "file://")):
            raise ValueError(f"must start with http://, https:// or file://, got {value!r}")


@attrs.frozen
class HttpSettings:
    listen: list[str] = _field(["tcp:8000:interface=127.0.0.1"],
                               "Twisted endpoint strings to serve on; [] serves nothing (embedding)")
    max_body_bytes: int = _field(1024 * 1024, "largest request body; more is answered 413",
                                 validator=_positive)
    access_log: bool = _field(False, "log one line per request")
    admin_token: str = _field("", "operators' routes (/api/v1/builds/live) require Authorization: Bearer "
                                  "<this token>; empty: they answer on loopback only")


@attrs.frozen
class RedisSettings:
    url: str = _field("", "redis://host:port/db or unix:///path.sock?db=N; empty: asud runs its own "
                          "redis-server under data_dir")
    timeout: float = _duration_field(1.0, "every Redis call fails after this (503 to the client)")
    server: str = _field("redis-server", "the program asud runs when url is empty")

    @url.validator
    def _check_url(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value and not value.startswith(("redis://", "unix://")):
            raise ValueError(f"must start with redis:// or unix://, got {value!r}")


@attrs.frozen
class RequestSettings:
    allow_defaults: bool = _field(False, "accept a first-boot script (defaults)")
    max_defaults_length: int = _field(20480, "longest defaults, bytes of UTF-8 (v1 API)",
                                      validator=_at_least(0))
    legacy_max_defaults_length: int = _field(10240, "longest defaults for the 2017 API (420 above it)",
                                             validator=_at_least(0))
    max_custom_rootfs_size_mb: int = _field(1024, "largest rootfs_size_mb a request may ask",
                                            validator=_positive)
    max_packages: int = _field(500, "most packages in one request", validator=_positive)
    repository_allow_list: list[str] = _field([], "URL prefixes extra repositories may use")
    max_pending_jobs: int = _field(200, "more queued builds than this → 529", validator=_positive)
    max_pending_per_client: int = _field(20, "queued builds one client may have", validator=_positive)
    rate_limit_per_minute: int = _field(0, "build POSTs per client per minute (0: no limit)",
                                        validator=_at_least(0))


@attrs.frozen
class UpgradePolicySettings:
    """Which version an upgrade check offers (see ``asud.upgrades.policy``)."""

    same_branch_first: bool = _field(True, "offer the newest point release of the branch first")
    next_branch_only: bool = _field(False, "move one branch at a time")
    include_snapshots: bool = _field(False, "offer snapshots")
    include_rc: bool = _field(False, "offer release candidates")


@attrs.frozen
class BuildSettings:
    workers: int = _field(1, "builds this daemon runs at once", validator=_at_least(0))
    sandbox: Literal["bwrap", "none"] = _field("bwrap", "bwrap, or none (tests of the pool only)")
    sandbox_uid: int = _field(65534, "uid (and gid) builds run as when asud runs as root",
                              validator=_at_least(1))
    timeout: float = _duration_field(600.0, "wall-clock limit of one build (TERM, then KILL)")
    kill_grace: float = _duration_field(5.0, "seconds between TERM and KILL")
    output_limit: int = _field(2 * 1024**3, "largest output of one build in bytes", validator=_positive)
    lease_timeout: float = _duration_field(60.0, "a build not renewed for this long is claimed by another")
    lease_renew_interval: float = _duration_field(10.0, "how often a running build renews its lease")
    max_attempts: int = _field(3, "a build that crashes daemons this often is failed", validator=_positive)

    @sandbox.validator
    def _check_sandbox(self, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in ("bwrap", "none"):
            raise ValueError(f"must be \"bwrap\" or \"none\", got {value!r}")


@attrs.frozen
class CacheSettings:
    imagebuilder_max_bytes: int = _field(20 * 1024**3, "unpacked ImageBuilders kept (LRU)",
                                         validator=_positive)
    package_max_bytes: int = _field(20 * 1024**3, "verified package cache", validator=_positive)
    store_max_bytes: int = _field(100 * 1024**3, "built images kept", validator=_positive)
    upstream_max_bytes: int = _field(2 * 1024**3, "download-server files the catalog keeps for its next "
                                     "refresh (the oldest unused go first)", validator=_positive)
    housekeeping_interval: float = _duration_field(600.0, "trim the caches, the store and the indexes this "
                                                   "often")


@attrs.frozen
class RetentionSettings:
    ttl_versioned: float = _duration_field(7 * 86400.0, "a release build's result is kept this long")
    ttl_unversioned: float = _duration_field(6 * 3600.0, "a snapshot build's result")
    ttl_defaults: float = _duration_field(6 * 3600.0, "a build with a first-boot script")
    ttl_failure: float = _duration_field(3600.0, "a failed build's answer")
    stats: float = _duration_field(90 * 86400.0, "statistics kept")


@attrs.frozen
class CatalogSettings:
    refresh_interval: float = _duration_field(900.0, "re-read the download servers this often")
    feed_cache_entries: int = _field(16, "parsed package feeds kept in memory (LRU)", validator=_positive)


@attrs.frozen
class UpstreamSettings:
    fetch_timeout: float = _duration_field(30.0, "one request to a download server")
    fetch_retries: int = _field(3, "retries of a failed request after the first attempt",
                                validator=_at_least(0))
    max_concurrent: int = _field(8, "requests to download servers at once", validator=_positive)


@attrs.frozen
class StoreSettings:
    """Where the files store is. Daemons of a cluster that answer for each other's builds share one
    (DESIGN.md decision 5): a directory all of them mount, each with its own ``data_dir``."""

    dir: str = _field("", "built images, build.json and build.log; empty: data_dir/store (relative: to "
                          "the config file)")


@attrs.frozen
class ClusterSettings:
    node: str = _field("", "this daemon's name in a cluster; empty: host name and first fixed TCP port "
                           "(else host name and process id)")


def _default_distros() -> dict[str, DistroSettings]:
    return {"openwrt": DistroSettings(public_keys=[OPENWRT_KEY])}


@attrs.frozen
class Config:
    """Every setting of an asud daemon. Defaults are for one machine."""

    data_dir: Path = attrs.field(default=Path("/var/lib/asud"), converter=Path,
                                 metadata={"doc": "ImageBuilder cache, package cache, store, own Redis"})
    public_url: str = _field("", "public base URL, for absolute links in 2017 API answers")
    server_contact: str = _field("admin@example.org", "shown on the about page and in /api/v1/revision")
    default_distro: str = _field("openwrt", "distribution of a request that names none")
    http: HttpSettings = attrs.field(factory=HttpSettings)
    redis: RedisSettings = attrs.field(factory=RedisSettings)
    requests: RequestSettings = attrs.field(factory=RequestSettings)
    upgrade_policy: UpgradePolicySettings = attrs.field(factory=UpgradePolicySettings)
    build: BuildSettings = attrs.field(factory=BuildSettings)
    cache: CacheSettings = attrs.field(factory=CacheSettings)
    retention: RetentionSettings = attrs.field(factory=RetentionSettings)
    catalog: CatalogSettings = attrs.field(factory=CatalogSettings)
    upstream: UpstreamSettings = attrs.field(factory=UpstreamSettings)
    store: StoreSettings = attrs.field(factory=StoreSettings)
    cluster: ClusterSettings = attrs.field(factory=ClusterSettings)
    distros: dict[str, DistroSettings] = attrs.field(factory=_default_distros)

    def __attrs_post_init__(self) -> None:
        if not self.distros:
            raise ConfigError("distros", "at least one distribution is needed")
        if self.default_distro not in self.distros:
            raise ConfigError("default_distro", f"{self.default_distro!r} is not among the distros "
                                                f"({', '.join(sorted(self.distros))})")

    # -- derived paths ---------------------------------------------------------------------------------
    @property
    def imagebuilder_dir(self) -> Path:
        return self.data_dir / "imagebuilders"

    @property
    def package_cache_dir(self) -> Path:
        return self.data_dir / "packages"

    @property
    def store_dir(self) -> Path:
        """``[store] dir``, else ``data_dir/store``."""
        return Path(self.store.dir) if self.store.dir else self.data_dir / "store"

    @property
    def workspace_dir(self) -> Path:
        return self.data_dir / "workspaces"

    @property
    def upstream_cache_dir(self) -> Path:
        return self.data_dir / "upstream-cache"

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    def node_name(self) -> str:
        """``[cluster] node``; else the host name and the first fixed TCP port of ``[http] listen``; else
        the host name and the process id (two daemons on one host never share a name)."""
        if self.cluster.node:
            return self.cluster.node
        host = socket.gethostname()
        for endpoint in self.http.listen:
            found = _FIXED_TCP_PORT.match(endpoint)
            if found and int(found.group(1)) != 0:
                return f"{host}:{found.group(1)}"
        return f"{host}:pid{os.getpid()}"

    def with_changes(self, **changes: Any) -> Config:
        """A copy with top-level values replaced (sections as mappings are merged)."""
        data = unstructure(self)
        _merge(data, changes)
        return structure(data)


# -- structuring ----------------------------------------------------------------------------------------
def _describe(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def _convert(value: Any, kind: Any, key: str) -> Any:
    """``value`` as ``kind``, or :class:`ConfigError` for ``key``."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        last: ConfigError | None = None
        for option in args:
            if option is type(None):
                continue
            try:
                return _convert(value, option, key)
            except ConfigError as error:
                last = error
        assert last is not None
        raise last
    if origin is Literal:
        if value not in args:
            raise ConfigError(key, f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list | tuple):
            raise ConfigError(key, f"expected a list, got {value!r}")
        return [_convert(item, args[0], f"{key}[{index}]") for index, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a table, got {value!r}")
        return {str(name): _convert(item, args[1], f"{key}.{name}") for name, item in value.items()}
    if attrs.has(kind):
        return _structure_class(kind, value, key)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(key, f"expected a whole number, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(key, f"expected a whole number, got {value!r}") from None
    if kind is float:
        return value  # durations and other numbers are converted by the field's converter
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    if kind is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(key, f"expected a path, got {value!r}")
        return Path(value)
    raise ConfigError(key, f"cannot read a value of type {_describe(kind)}")


def _structure_class(cls: type[Any], value: Any, key: str) -> Any:
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected a table, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in attrs.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        where = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ConfigError(where, f"unknown setting (known here: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, raw in value.items():
        kwargs[name] = _convert(raw, hints[name], f"{key}.{name}" if key else name)
    try:
        return cls(**kwargs)
    except ConfigError as error:
        if key and not error.key.startswith(key):
            raise ConfigError(f"{key}.{error.key}", error.reason) from None
        raise
    except (ValueError, TypeError) as error:
        raise ConfigError(key or cls.__name__, str(error)) from None


def _structure_fields(cls: type[Any], value: Mapping[str, Any], key: str) -> Any:
    """Like :func:`_structure_class`, but names the field whose validator or converter refused."""
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in attrs.fields(cls)}
    for name, raw in value.items():
        field = fields.get(name)
        if field is None:
            continue
        where = f"{key}.{name}" if key else name
        converted = _convert(raw, hints[name], where)
        try:
            if field.converter is not None:
                converted = field.converter(converted)  # type: ignore[operator, misc]
            if field.validator is not None:
                field.validator(None, field, converted)
        except ConfigError:
            raise
        except (ValueError, TypeError) as error:
            raise ConfigError(where, str(error)) from None
    return _structure_class(cls, value, key)


def structure(data: Mapping[str, Any]) -> Config:
    """A :class:`Config` from plain data (TOML tables); :class:`ConfigError` for anything wrong."""
    data = dict(data)
    for section in attrs.fields_dict(Config):
        value = data.get(section)
        if value is None:
            continue
        hint = typing.get_type_hints(Config)[section]
        if attrs.has(hint) and isinstance(value, Mapping):
            data[section] = _structure_fields(hint, value, section)
        elif section == "distros" and isinstance(value, Mapping):
            distros = {}
            for name, distro in value.items():
                if not isinstance(distro, Mapping | DistroSettings):
                    raise ConfigError(f"distros.{name}", f"expected a table, got {distro!r}")
                distros[str(name).lower()] = (
                    distro if isinstance(distro, DistroSettings)
                    else _structure_fields(DistroSettings, distro, f"distros.{name}")
                )
            data[section] = distros
    return _structure_fields(Config, data, "")


def unstructure(config: Any) -> Any:
    """Plain data (what a TOML file would hold) from a config object."""
    if attrs.has(type(config)):
        return {field.name: unstructure(getattr(config, field.name)) for field in attrs.fields(type(config))}
    if isinstance(config, dict):
        return {name: unstructure(value) for name, value in config.items()}
    if isinstance(config, list | tuple):
        return [unstructure(value) for value in config]
    if isinstance(config, Path):
        return str(config)
    return config


def _merge(into: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for name, value in changes.items():
        if isinstance(value, Mapping) and isinstance(into.get(name), dict):
            _merge(into[name], value)
        elif attrs.has(type(value)):
            into[name] = unstructure(value)
        else:
            into[name] = value


def _env_value(text: str) -> Any:
    """An environment value as TOML when it reads as one (``2``, ``true``, ``["a"]``), else the string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ASUD_*`` variables as nested data: ``ASUD_BUILD__WORKERS=2`` → ``{"build": {"workers": 2}}``."""
    result: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "ASUD_CONFIG":
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX):].split("__") if part]
        if not path:
            continue
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(".".join(path), f"{name} conflicts with another ASUD_ variable")
        node[path[-1]] = _env_value(text)
    return result


def _anchor(table: dict[str, Any], key: str, directory: Path) -> None:
    """A relative path ``table[key]`` from a file, made absolute from that file's ``directory``."""
    value = table.get(key)
    if isinstance(value, str) and value and not Path(value).is_absolute():
        table[key] = str((directory / value).resolve())


def config_file(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: ``path``, else ``$ASUD_CONFIG``, else the system file when it exists."""
    if path is not None:
        return Path(path)
    if environ.get("ASUD_CONFIG"):
        return Path(environ["ASUD_CONFIG"])
    return SYSTEM_CONFIG_FILE if SYSTEM_CONFIG_FILE.is_file() else None


def to_toml(settings: Mapping[str, Any], prefix: str = "") -> str:
    """Plain settings (strings, numbers, booleans, paths, lists, nested tables) as a TOML document, for
    programs that write a configuration file for a daemon they start (benchmarks, tests)."""

    def value(item: Any) -> str:
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int | float):
            return repr(item)
        if isinstance(item, str | Path):
            return json.dumps(str(item))
        if isinstance(item, list | tuple):
            return "[" + ", ".join(value(element) for element in item) + "]"
        if isinstance(item, Mapping):
            pairs = (f"{json.dumps(str(key))} = {value(inner)}" for key, inner in item.items())
            return "{" + ", ".join(pairs) + "}"
        raise TypeError(f"no TOML for {item!r}")

    lines = [f"[{prefix}]"] if prefix else []
    lines += [f"{json.dumps(str(key))} = {value(item)}" for key, item in settings.items()
              if not isinstance(item, Mapping)]
    text = "\n".join(lines) + "\n"
    for key, item in settings.items():
        if isinstance(item, Mapping):
            text += "\n" + to_toml(item, f"{prefix}.{key}" if prefix else str(key))
    return text


def load(path: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None,
         **overrides: Any) -> Config:
    """The daemon's settings: TOML file, then ``ASUD_*`` variables, then ``overrides``.

    Relative ``data_dir`` and ``[store] dir`` values in a file are taken relative to that file's
    directory, so a config file and its data can move together (``make demo`` relies on this).
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = config_file(path, environ)
    if source is not None:
        try:
            data = tomllib.loads(source.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("", f"configuration file {source} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError("", f"{source}: not valid TOML: {error}") from None
        _anchor(data, "data_dir", source.parent)
        if isinstance(data.get("store"), dict):
            _anchor(data["store"], "dir", source.parent)
    _merge(data, environment_overrides(environ))
    _merge(data, overrides)
    return structure(data)
