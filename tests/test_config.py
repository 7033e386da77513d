"""Settings: the TOML file, ``ASUD_*`` variables, and refusals that name the key."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import attrs
import pytest

from asud import config

ETC = Path(__file__).resolve().parents[1] / "etc" / "asud.toml"


def _uncommented_example(tmp_path: Path) -> Path:
    """etc/asud.toml with every ``# key = value`` line made live (skipping the unset ones)."""
    lines = []
    for line in ETC.read_text().splitlines():
        match = re.match(r"^# ([a-z_]+) = (.*)$", line)
        if match and "…" not in match.group(2):
            lines.append(f"{match.group(1)} = {match.group(2)}")
        elif line.startswith("["):
            lines.append(line)
    path = tmp_path / "asud.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_example_file_lists_every_setting_with_its_default(tmp_path: Path) -> None:
    text = ETC.read_text()
    for section in attrs.fields(config.Config):
        kind = attrs.fields_dict(config.Config)[section.name].type
        assert re.search(rf"^# {section.name} = |^\[{section.name}[.\]]", text, re.M), section.name
        if isinstance(kind, type) and attrs.has(kind):
            for field in attrs.fields(kind):
                assert f"# {field.name} = " in text, f"{section.name}.{field.name} missing from etc/asud.toml"
    loaded = config.load(_uncommented_example(tmp_path), environ={})
    assert config.unstructure(loaded) == config.unstructure(config.Config())


def test_environment_overrides_file_and_nests_with_double_underscore(tmp_path: Path) -> None:
    path = tmp_path / "asud.toml"
    path.write_text('data_dir = "data"\n[build]\nworkers = 2\n[distros.openwrt]\nupstream_url = "http://a"\n')
    loaded = config.load(path, environ={
        "ASUD_BUILD__WORKERS": "3",
        "ASUD_DISTROS__OPENWRT__UPSTREAM_URL": "http://127.0.0.1:9",
        "ASUD_RETENTION__TTL_FAILURE": "2h",
        "ASUD_HTTP__LISTEN": '["tcp:0", "unix:/tmp/a.sock"]',
    })
    assert loaded.build.workers == 3
    assert loaded.distros["openwrt"].upstream_url == "http://127.0.0.1:9"
    assert loaded.retention.ttl_failure == 7200.0
    assert loaded.http.listen == ["tcp:0", "unix:/tmp/a.sock"]
    assert loaded.data_dir == (tmp_path / "data").resolve()  # relative to the file


def test_asud_config_variable_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text('public_url = "https://asu.example"\n')
    assert config.load(environ={"ASUD_CONFIG": str(path)}).public_url == "https://asu.example"


def test_store_dir_defaults_to_the_data_dir_and_may_be_shared(tmp_path: Path) -> None:
    """``[store] dir``: one files store for several daemons, each with its own ``data_dir``."""
    assert config.load(environ={}, data_dir=str(tmp_path)).store_dir == tmp_path / "store"
    path = tmp_path / "node-a" / "asud.toml"
    path.parent.mkdir()
    path.write_text('data_dir = "data"\n[store]\ndir = "../shared-store"\n')
    loaded = config.load(path, environ={})
    assert loaded.data_dir == (tmp_path / "node-a" / "data").resolve()
    assert loaded.store_dir == (tmp_path / "shared-store").resolve()  # relative to the file
    assert loaded.imagebuilder_dir == loaded.data_dir / "imagebuilders"  # the caches stay the node's own
    shared = config.load(path, environ={"ASUD_STORE__DIR": "/srv/asud/store"})
    assert shared.store_dir == Path("/srv/asud/store")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ASUD_BUILD__WORKERS": "-1"}, "build.workers: must be at least 0"),
        ({"ASUD_BUILD__WORKERS": "many"}, "build.workers: expected a whole number"),
        ({"ASUD_BUILD__WORKERZ": "1"}, "build.workerz: unknown setting"),
        ({"ASUD_RETENTION__TTL_FAILURE": "soon"}, "retention.ttl_failure: expected a duration"),
        ({"ASUD_BUILD__SANDBOX": "docker"}, "build.sandbox: must be one of 'bwrap', 'none'"),
        ({"ASUD_REDIS__URL": "http://x"}, "redis.url: must start with redis:// or unix://"),
        ({"ASUD_DEFAULT_DISTRO": "lede"}, "default_distro: 'lede' is not among the distros"),
        ({"ASUD_DISTROS__OPENWRT__UPSTREAM_URL": "ftp://x"}, "distros.openwrt.upstream_url: must start"),
        ({"ASUD_HTTP__MAX_BODY_BYTES": "0"}, "http.max_body_bytes: must be greater than 0"),
    ],
)
def test_bad_values_are_refused_with_key_and_reason(environ: dict[str, str], message: str) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.load(environ=environ)
    assert str(caught.value).startswith(message)


def test_bad_toml_and_missing_file_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[build\nworkers = 1\n")
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        config.load(broken, environ={})
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml", environ={})


def test_package_changes_and_overrides_structure_into_attrs() -> None:
    loaded = config.load(environ={}, distros={"openwrt": {
        "upstream_url": "http://x",
        "package_changes": [{"source": "auc", "target": "owut", "revision": 26792}],
    }}, build={"workers": 4})
    change = loaded.distros["openwrt"].package_changes[0]  # type: ignore[index]
    assert change.to_json() == {"source": "auc", "target": "owut", "revision": 26792, "mandatory": False}
    assert loaded.build.workers == 4
    assert loaded.with_changes(build={"workers": 1}).build.workers == 1


@pytest.mark.parametrize(("text", "seconds"), [(30, 30.0), ("90s", 90.0), ("10m", 600.0), ("7d", 604800.0),
                                               ("250ms", 0.25), ("1.5h", 5400.0)])
def test_durations(text: object, seconds: float) -> None:
    assert config.parse_duration(text) == seconds


def test_to_toml_round_trips_through_load(tmp_path: Path) -> None:
    settings = {
        "data_dir": str(tmp_path / "data"),
        "http": {"listen": ["tcp:0:interface=127.0.0.1"], "access_log": True},
        "build": {"workers": 2, "timeout": 90.5},
        "distros": {"openwrt": {"upstream_url": "http://127.0.0.1:1", "public_keys": ["RWabc"],
                                "package_changes": [{"source": "auc", "target": "owut", "revision": 1}]}},
    }
    path = tmp_path / "asud.toml"
    path.write_text(config.to_toml(settings))
    assert config.unstructure(config.load(path, environ={})) == config.unstructure(
        config.load(environ={}, **settings))


def test_node_name_is_unique_per_daemon_on_a_host() -> None:
    host = socket.gethostname()
    assert config.load(environ={}, cluster={"node": "builder-1"}).node_name() == "builder-1"
    assert config.load(environ={}).node_name() == f"{host}:8000"
    assert config.load(environ={}, http={"listen": ["unix:/run/asud.sock", "tcp6:port=8443"]}).node_name() \
        == f"{host}:8443"
    assert config.load(environ={}, http={"listen": ["tcp:0"]}).node_name() == f"{host}:pid{os.getpid()}"


def test_admin_token_is_empty_by_default_and_set_from_the_environment() -> None:
    assert config.load(environ={}).http.admin_token == ""
    loaded = config.load(environ={"ASUD_HTTP__ADMIN_TOKEN": "s3cret"})
    assert loaded.http.admin_token == "s3cret"
