"""``sync_distro`` against the demo upstream served over HTTP on 127.0.0.1 (and ``sysup sync``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from sysup.catalog.models import PackageFeed, Profile, Target, Version
from sysup.catalog.queries import Catalog
from sysup.cli import app
from sysup.demo_upstream.server import running_upstream
from tests.catalog.sysup_era.helpers import copy_tree, distro_for, migrated, replace_file, run_sync
from tests.support.upstream import DemoTree

ATH79 = "releases/24.10.4/targets/ath79/generic"


def _engine(factory: sessionmaker[Session]) -> Engine:
    engine = factory.kw["bind"]
    assert isinstance(engine, Engine)
    return engine


@contextmanager
def recorded_writes(engine: Engine) -> Iterator[list[str]]:
    """Every INSERT/UPDATE/DELETE the engine executes inside the block."""
    writes: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}:
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield writes
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _count(factory: sessionmaker[Session], model: Any, *where: Any) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_sync_fills_the_catalog(demo_tree: DemoTree, sqlite_url: str) -> None:
    factory = migrated(sqlite_url)
    report = run_sync(factory, distro_for(demo_tree))
    assert report.errors == []
    assert report.versions == 5 and report.targets == 15 and report.targets_updated == 15
    assert report.profiles == _count(factory, Profile) > 15
    assert report.packages > 1000 and report.bytes > 0
    with factory() as session:
        versions = {v: pm for v, pm in session.execute(select(Version.version, Version.package_manager))}
        feeds = {
            tuple(row)
            for row in session.execute(
                select(PackageFeed.version, PackageFeed.key, PackageFeed.feed, PackageFeed.detail)
            )
        }
    assert versions == {
        "23.05.5": "opkg",
        "24.10.4": "opkg",
        "24.10.5": "opkg",
        "25.12.1": "apk",
        "SNAPSHOT": "apk",
    }
    # kmods feeds exist where profiles.json names a kernel (24.10+), not for 23.05.
    assert ("24.10.4", "ath79/generic", "kmods", "full") in feeds
    assert not any(version == "23.05.5" and feed == "kmods" for version, _, feed, _ in feeds)
    assert ("24.10.4", "mips_24kc", "luci", "full") in feeds
    assert ("25.12.1", "x86/64", "packages", "names") in feeds
    assert ("SNAPSHOT", "aarch64_cortex-a53", "base", "names") in feeds
    catalog = Catalog(factory, {"openwrt": distro_for(demo_tree)})
    kmods = [name for name in catalog.package_index("openwrt", "24.10.4", "ath79/generic").versions()]
    assert any(name.startswith("kmod-") for name in kmods)


def test_resync_without_changes_sends_only_conditional_requests(demo_tree: DemoTree, sqlite_url: str) -> None:
    factory = migrated(sqlite_url)
    first = run_sync(factory, distro_for(demo_tree))
    with recorded_writes(_engine(factory)) as writes:
        second = run_sync(factory, distro_for(demo_tree))
    assert second.errors == []
    # Unchanged signed lists stand for everything they name: one conditional request per target and per
    # architecture, instead of one per file.
    assert 0 < second.requests < first.requests / 2
    assert second.not_modified == second.requests - second.not_found > 20
    assert second.bytes == 0
    assert (second.targets_updated, second.profiles, second.packages, second.feeds_updated) == (0, 0, 0, 0)
    assert writes == []


def test_profiles_json_without_matching_signature_is_refused(demo_tree: DemoTree, tmp_path: Path) -> None:
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    factory = migrated(f"sqlite:///{tmp_path / 'sysup.db'}")
    profiles = root / ATH79 / "profiles.json"
    original = profiles.read_bytes()
    document = json.loads(original)
    document["version_code"] = "r99999-evil000000"
    replace_file(profiles, json.dumps(document).encode())
    with running_upstream(root) as url:
        report = run_sync(factory, distro_for(demo_tree, url))
        assert len(report.errors) == 1
        assert "ath79/generic/profiles.json" in report.errors[0] and "sha256sums" in report.errors[0]
        assert _count(factory, Target, Target.version == "24.10.4", Target.target == "ath79/generic") == 0
        assert _count(factory, Target, Target.version == "24.10.4") == 2
        assert (
            _count(factory, PackageFeed, PackageFeed.key == "ath79/generic", PackageFeed.version == "24.10.4")
            == 0
        )
        # Restored upstream: the next sync fetches it in full and stores it.
        replace_file(profiles, original)
        healed = run_sync(factory, distro_for(demo_tree, url))
    assert healed.errors == [] and healed.targets_updated == 1
    with factory() as session:
        code = session.scalar(
            select(Target.version_code).where(Target.target == "ath79/generic", Target.version == "24.10.4")
        )
    assert code == json.loads(original)["version_code"]


def test_tampering_after_a_sync_keeps_the_verified_data(demo_tree: DemoTree, tmp_path: Path) -> None:
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    factory = migrated(f"sqlite:///{tmp_path / 'sysup.db'}")
    with running_upstream(root) as url:
        assert run_sync(factory, distro_for(demo_tree, url)).errors == []
        replace_file(root / ATH79 / "profiles.json", b'{"profiles": {}}')
        with recorded_writes(_engine(factory)) as writes:
            report = run_sync(factory, distro_for(demo_tree, url))
    # The signed sha256sums did not change, so the re-sync does not even read the files it lists: the
    # tampered profiles.json is never looked at, and nothing unverified is stored.
    assert report.errors == []
    assert writes == []
    catalog = Catalog(factory, {"openwrt": distro_for(demo_tree, url)})
    assert catalog.profile("openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5") is not None


def test_rewritten_checksums_without_a_new_signature_are_refused(demo_tree: DemoTree, tmp_path: Path) -> None:
    """A mirror that tampers with profiles.json and fixes up sha256sums cannot forge sha256sums.sig."""
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    factory = migrated(f"sqlite:///{tmp_path / 'sysup.db'}")
    with running_upstream(root) as url:
        assert run_sync(factory, distro_for(demo_tree, url)).errors == []
        forged = b'{"profiles": {}}'
        replace_file(root / ATH79 / "profiles.json", forged)
        sums = root / ATH79 / "sha256sums"
        forged_line = f"{hashlib.sha256(forged).hexdigest()} *profiles.json"
        lines = [
            forged_line if line.endswith("*profiles.json") else line for line in sums.read_text().splitlines()
        ]
        replace_file(sums, ("\n".join(lines) + "\n").encode())
        with recorded_writes(_engine(factory)) as writes:
            report = run_sync(factory, distro_for(demo_tree, url))
    assert any("ath79/generic" in error and "sha256sums" in error for error in report.errors), report.errors
    assert not any("profiles" in statement for statement in writes)
    catalog = Catalog(factory, {"openwrt": distro_for(demo_tree, url)})
    assert catalog.profile("openwrt", "24.10.4", "ath79/generic", "tplink_archer-c7-v5") is not None


def test_versions_and_targets_gone_upstream_are_marked(demo_tree: DemoTree, tmp_path: Path) -> None:
    root = copy_tree(demo_tree[0].root, tmp_path / "tree")
    factory = migrated(f"sqlite:///{tmp_path / 'sysup.db'}")
    versions_file = root / ".versions.json"
    targets_file = root / "releases/24.10.5/.targets.json"
    versions_original, targets_original = versions_file.read_bytes(), targets_file.read_bytes()
    with running_upstream(root) as url:
        distro = distro_for(demo_tree, url)
        catalog = Catalog(factory, {"openwrt": distro})
        assert run_sync(factory, distro).errors == []
        versions = json.loads(versions_original)
        versions["versions_list"].remove("24.10.4")
        replace_file(versions_file, json.dumps(versions).encode())
        targets = json.loads(targets_original)
        del targets["mediatek/filogic"]
        replace_file(targets_file, json.dumps(targets).encode())
        report = run_sync(factory, distro)
        assert report.errors == [] and report.marked_absent == 2
        assert catalog.version("openwrt", "24.10.4") is None
        assert catalog.target("openwrt", "24.10.5", "mediatek/filogic") is None
        assert catalog.branches("openwrt")["24.10"].versions == ["24.10.5"]
        assert _count(factory, Version) == 5  # kept, only marked
        replace_file(versions_file, versions_original)
        replace_file(targets_file, targets_original)
        assert run_sync(factory, distro).errors == []
        assert catalog.version("openwrt", "24.10.4") is not None
        assert catalog.target("openwrt", "24.10.5", "mediatek/filogic") is not None


def test_distro_without_keys_is_refused(demo_tree: DemoTree, sqlite_url: str) -> None:
    factory = migrated(sqlite_url)
    distro = distro_for(demo_tree).model_copy(update={"public_keys": []})
    report = run_sync(factory, distro)
    assert report.requests == 0 and "public_keys" in report.errors[0]


def test_sync_on_postgresql(demo_tree: DemoTree, postgres_url: str) -> None:
    from tests.support.databases import reset_postgres

    reset_postgres(postgres_url)
    factory = migrated(postgres_url)
    try:
        first = run_sync(factory, distro_for(demo_tree))
        assert first.errors == [] and first.targets_updated == 15
        with recorded_writes(_engine(factory)) as writes:
            second = run_sync(factory, distro_for(demo_tree))
        assert second.not_modified == second.requests - second.not_found and writes == []
        catalog = Catalog(factory, {"openwrt": distro_for(demo_tree)})
        assert catalog.latest("openwrt") == ["25.12.1", "24.10.5", "23.05.5"]
        profile = catalog.profile("openwrt", "24.10.4", "ath79/generic", "tplink,archer-c7-v5")
        assert profile is not None and profile.id == "tplink_archer-c7-v5"
        assert "luci" in catalog.package_index("openwrt", "24.10.4", "ath79/generic")
    finally:
        _engine(factory).dispose()


def test_cli_sync_migrates_and_fills_the_database(demo_tree: DemoTree, tmp_path: Path) -> None:
    config = tmp_path / "sysup.toml"
    key = json.dumps(demo_tree[0].public_key_text)
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n\n'
        f'[distros.openwrt]\nupstream_url = "{demo_tree[1]}"\npublic_keys = [{key}]\n'
    )
    result = CliRunner().invoke(app, ["sync", "--distro", "openwrt"], env={"SYSUP_CONFIG": str(config)})
    assert result.exit_code == 0, result.output
    factory = migrated(f"sqlite:///{tmp_path / 'data' / 'sysup.db'}")
    assert _count(factory, Target) == 15
    unknown = CliRunner().invoke(app, ["sync", "--distro", "nope"], env={"SYSUP_CONFIG": str(config)})
    assert unknown.exit_code != 0
