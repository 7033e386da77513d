"""Package feeds: the repositories file, fetching, signature checks and index parsing.

opkg-era IBs read ``repositories.conf`` (``src/gz name url`` → ``url/Packages.gz`` + ``Packages.sig``);
apk-era IBs read ``repositories`` (one ``…/packages.adb`` URL per line; the demo ``packages.adb`` is a
signed text container, see docs/demo-upstream.md). The local ``packages/`` directory is always a feed,
indexed from the package files it holds, as the real IB's ``package_reload`` does.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import mini_ib_ed25519

Relation = tuple[str, str | None, str | None]  # name, op, version

_RELATION = re.compile(r"^\s*([^\s<>=~!(]+)\s*(?:\(?\s*(<<|<=|>=|>>|==|=|<|>|~)\s*([^\s)]+)\s*\)?)?\s*$")


class FeedError(Exception):
    """A feed could not be read or did not verify; ``str()`` is the message shown to the user."""


@dataclass
class Package:
    """One installable package of a feed (names keep their ABI suffix, as the indexes list them)."""

    name: str
    version: str
    depends: list[list[Relation]] = field(default_factory=list)
    provides: list[tuple[str, str | None]] = field(default_factory=list)
    conflicts: list[Relation] = field(default_factory=list)
    abi_version: str = ""
    architecture: str = ""
    filename: str = ""
    size: int = 0
    sha256: str = ""
    installed_size: int = 0
    description: str = ""
    url: str = ""
    feed: str = ""
    control: str = ""

    @property
    def stripped_name(self) -> str:
        """The name without ABI suffix (``STRIP_ABI=1`` manifests, ABI-free requests)."""
        if self.abi_version and self.name.endswith(self.abi_version) and self.name != self.abi_version:
            return self.name[: -len(self.abi_version)]
        return self.name

    def provided_names(self) -> list[tuple[str, str | None]]:
        """Names this package answers to besides its own: Provides plus the ABI-free name."""
        names = list(self.provides)
        if self.stripped_name != self.name:
            names.append((self.stripped_name, None))
        return names


@dataclass
class Feed:
    name: str
    url: str
    packages: list[Package]


def parse_relation(text: str) -> Relation:
    """``libfoo (>= 1.2)`` (opkg) or ``libfoo>=1.2`` (apk) → (name, op, version)."""
    match = _RELATION.match(text)
    if not match:
        return (text.strip(), None, None)
    return (match.group(1), match.group(2), match.group(3))


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


# --- fetching ------------------------------------------------------------------------------------


def resolve_location(url: str, base: Path) -> str | Path:
    """A local path for ``file:``/plain locations (relative ones against ``base``), else the URL."""
    if url.startswith(("http://", "https://")):
        return url
    if url.startswith("file:"):
        rest = url[len("file:") :]
        if rest.startswith("//"):
            rest = urllib.parse.urlparse(url).path
        path = Path(urllib.parse.unquote(rest))
    else:
        path = Path(url)
    return path if path.is_absolute() else base / path


def fetch(url: str, base: Path) -> bytes:
    """The bytes at ``url`` (http(s) via urllib, ``file:`` URLs, plain paths)."""
    location = resolve_location(url, base)
    try:
        if isinstance(location, Path):
            return location.read_bytes()
        import urllib.request  # only remote feeds need it; importing it costs a tenth of a second

        with urllib.request.urlopen(location, timeout=60) as response:
            return response.read()
    except OSError as error:
        raise FeedError(f"Failed to download {url}: {error}") from error


def join_url(base_url: str, name: str) -> str:
    return base_url.rstrip("/") + "/" + name


# --- usign ---------------------------------------------------------------------------------------


def _usign_blob(text: str, expected_len: int, what: str) -> bytes:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].startswith("untrusted comment:"):
        raise FeedError(f"malformed {what}")
    try:
        blob = base64.b64decode(lines[1], validate=True)
    except ValueError as error:
        raise FeedError(f"malformed {what}") from error
    if len(blob) != expected_len or blob[:2] != b"Ed":
        raise FeedError(f"malformed {what}")
    return blob


def _trusted_key(keys_dir: Path, keynum: bytes) -> bytes | None:
    candidates = [keys_dir / keynum.hex()]
    if keys_dir.is_dir():
        candidates += sorted(p for p in keys_dir.iterdir() if p.is_file() and p.name != keynum.hex())
    for path in candidates:
        try:
            blob = _usign_blob(path.read_text(errors="replace"), 42, "public key")
        except (FeedError, OSError):
            continue
        if blob[2:10] == keynum:
            return blob[10:]
    return None


def verify_usign(message: bytes, signature_text: str, keys_dir: Path) -> None:
    """Raise ``FeedError`` unless ``signature_text`` is a usign signature of ``message`` by a key in keys/."""
    sig = _usign_blob(signature_text, 74, "signature")
    key = _trusted_key(keys_dir, sig[2:10])
    if key is None:
        raise FeedError(f"no trusted key {sig[2:10].hex()} in keys/")
    if not mini_ib_ed25519.verify(key, message, sig[10:]):
        raise FeedError(f"signature by key {sig[2:10].hex()} does not match")


# --- repositories files --------------------------------------------------------------------------


def read_opkg_repositories(text: str) -> tuple[list[tuple[str, str, bool]], bool]:
    """``repositories.conf`` → ([(name, url, gzipped)], check_signature)."""
    feeds: list[tuple[str, str, bool]] = []
    check_signature = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if parts[0] in ("src", "src/gz") and len(parts) >= 3:
            feeds.append((parts[1], parts[2], parts[0] == "src/gz"))
        elif parts[:2] == ["option", "check_signature"]:
            check_signature = len(parts) < 3 or parts[2] not in ("0", "false")
    return feeds, check_signature


def read_apk_repositories(text: str) -> list[str]:
    """``repositories`` → index URLs (``set`` lines, tags and comments skipped)."""
    urls = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "set ")):
            continue
        parts = [p for p in line.split() if p not in ("ndx", "v2", "v3") and not p.startswith("@")]
        if parts:
            urls.append(parts[0])
    return urls


def is_local(url: str, ib_dir: Path) -> bool:
    """Whether ``url`` is the IB's own ``packages/`` directory (never signature-checked)."""
    location = resolve_location(url, ib_dir)
    if not isinstance(location, Path):
        return False
    target = location.parent if location.name == "packages.adb" else location
    try:
        return target.resolve() == (ib_dir / "packages").resolve()
    except OSError:
        return False


# --- index parsing -------------------------------------------------------------------------------


def parse_control(text: str) -> dict[str, str]:
    """One RFC-822 stanza (continuation lines start with a space) → field map."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith((" ", "\t")) and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return fields


def package_from_control(fields: dict[str, str], control: str = "") -> Package:
    provides = [parse_relation(p) for p in _split_list(fields.get("Provides", ""))]
    return Package(
        name=fields["Package"],
        version=fields.get("Version", ""),
        depends=[
            [parse_relation(alt) for alt in item.split("|")]
            for item in _split_list(fields.get("Depends", ""))
        ],
        provides=[(name, version) for name, _, version in provides],
        conflicts=[parse_relation(c) for c in _split_list(fields.get("Conflicts", ""))],
        abi_version=fields.get("ABIVersion", ""),
        architecture=fields.get("Architecture", ""),
        filename=fields.get("Filename", ""),
        size=int(fields.get("Size", "0") or 0),
        sha256=fields.get("SHA256sum", "").strip(),
        installed_size=int(fields.get("Installed-Size", "0") or 0),
        description=fields.get("Description", ""),
        control=control,
    )


def parse_packages(text: str) -> list[Package]:
    """An opkg ``Packages`` index → packages in index order."""
    packages = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = parse_control(stanza)
        if "Package" in fields:
            packages.append(package_from_control(fields, stanza.strip() + "\n"))
    return packages


def _apk_relations(items: list[str]) -> list[Relation]:
    return [parse_relation(item) for item in items]


def package_from_apk_entry(entry: dict) -> Package:
    """One package object of the demo ``packages.adb`` body (or a ``.PKGINFO`` turned into one)."""
    depends: list[list[Relation]] = []
    conflicts = _apk_relations(list(entry.get("conflicts", [])))
    for item in entry.get("depends", []):
        if item.startswith("!"):
            conflicts.append(parse_relation(item[1:]))
        else:
            depends.append([parse_relation(alt) for alt in item.split("|")])
    provides = []
    for item in entry.get("provides", []):
        name, _, version = item.partition("=")
        provides.append((name, version or None))
    return Package(
        name=entry["name"],
        version=entry["version"],
        depends=depends,
        provides=provides,
        conflicts=conflicts,
        abi_version=entry.get("abi_version") or "",
        architecture=entry.get("arch", entry.get("architecture", "")),
        filename=entry.get("file", ""),
        size=int(entry.get("size", 0) or 0),
        sha256=entry.get("sha256", ""),
        installed_size=int(entry.get("installed_size", 0) or 0),
        description=entry.get("description", ""),
    )


def parse_demo_adb(data: bytes, keys_dir: Path | None) -> list[Package]:
    """The demo ``packages.adb``: magic line, usign comment + signature lines, then the signed JSON body.

    The signature covers the body bytes exactly (everything after the third newline). ``keys_dir``
    None skips the check (the local repository).
    """
    parts = data.split(b"\n", 3)
    if len(parts) != 4 or not parts[0].startswith(b"SYSUP-DEMO-ADB"):
        raise FeedError("not a packages.adb index")
    body = parts[3]
    if keys_dir is not None:
        verify_usign(body, (parts[1] + b"\n" + parts[2] + b"\n").decode(errors="replace"), keys_dir)
    try:
        document = json.loads(body)
    except ValueError as error:
        raise FeedError(f"unreadable index body: {error}") from error
    return [package_from_apk_entry(entry) for entry in document.get("packages", [])]


# --- package files -------------------------------------------------------------------------------


def _member_bytes(archive: tarfile.TarFile, name: str) -> bytes | None:
    for member in archive.getmembers():
        if member.name.lstrip("./") == name.lstrip("./") and member.isfile():
            handle = archive.extractfile(member)
            return handle.read() if handle else None
    return None


def ipk_parts(data: bytes) -> tuple[bytes, bytes]:
    """An ``.ipk`` (gzip tar) → (control.tar.gz bytes, data.tar.gz bytes)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as outer:
        control = _member_bytes(outer, "control.tar.gz")
        payload = _member_bytes(outer, "data.tar.gz")
    if control is None or payload is None:
        raise FeedError("malformed ipk: control.tar.gz or data.tar.gz missing")
    return control, payload


def ipk_control_files(data: bytes) -> dict[str, bytes]:
    """The files of an ``.ipk``'s control.tar.gz (``control``, ``postinst``, …)."""
    control, _ = ipk_parts(data)
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(control), mode="r:gz") as archive:
        for member in archive.getmembers():
            handle = archive.extractfile(member) if member.isfile() else None
            if handle:
                files[member.name.lstrip("./")] = handle.read()
    return files


def parse_pkginfo(text: str) -> dict:
    """A demo ``.apk``'s ``.PKGINFO`` (apk v2 ``key = value`` lines) → an index-entry-like dict."""
    entry: dict = {"depends": [], "provides": [], "conflicts": []}
    for line in text.splitlines():
        key, sep, value = line.partition(" = ")
        if not sep or line.startswith("#"):
            continue
        key, value = key.strip(), value.strip()
        if key == "pkgname":
            entry["name"] = value
        elif key == "pkgver":
            entry["version"] = value
        elif key == "arch":
            entry["arch"] = value
        elif key == "depend":
            entry["depends"].append(value)
        elif key == "provides":
            entry["provides"].append(value)
        elif key == "conflict":
            entry["conflicts"].append(value)
        elif key == "size":
            entry["installed_size"] = int(value)
        elif key == "pkgdesc":
            entry["description"] = value
        elif key == "tags":
            for tag in value.split():
                if tag.startswith("openwrt:abiversion="):
                    entry["abi_version"] = tag.split("=", 1)[1]
    return entry


def local_feed(packages_dir: Path, apk: bool) -> Feed:
    """Index the IB's ``packages/`` directory in memory (never written: the IB tree may be shared)."""
    packages = []
    pattern = "*.apk" if apk else "*.ipk"
    for path in sorted(packages_dir.glob(pattern)) if packages_dir.is_dir() else []:
        data = path.read_bytes()
        try:
            if apk:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                    info = _member_bytes(archive, ".PKGINFO")
                if info is None:
                    continue
                package = package_from_apk_entry(parse_pkginfo(info.decode()))
            else:
                control = ipk_control_files(data).get("control", b"").decode()
                package = package_from_control(parse_control(control), control)
        except (tarfile.TarError, OSError, KeyError, ValueError, FeedError):
            continue
        package.filename = path.name
        package.size = len(data)
        package.sha256 = hashlib.sha256(data).hexdigest()
        package.url = str(path)
        package.feed = "imagebuilder"
        packages.append(package)
    return Feed("imagebuilder", "file:packages", packages)


def load_opkg_feeds(ib_dir: Path, keys_dir: Path) -> list[Feed]:
    """Every feed of ``repositories.conf``, each index verified when ``option check_signature`` is set."""
    conf = ib_dir / "repositories.conf"
    entries, check_signature = read_opkg_repositories(conf.read_text() if conf.exists() else "")
    feeds: list[Feed] = []
    has_local = False
    for name, url, gzipped in entries:
        if is_local(url, ib_dir):
            feeds.append(local_feed(ib_dir / "packages", apk=False))
            has_local = True
            continue
        if gzipped:
            text = gzip.decompress(fetch(join_url(url, "Packages.gz"), ib_dir))
        else:
            text = fetch(join_url(url, "Packages"), ib_dir)
        if check_signature:
            sig_url = join_url(url, "Packages.sig")
            try:
                verify_usign(text, fetch(sig_url, ib_dir).decode(errors="replace"), keys_dir)
            except FeedError as error:
                raise FeedError(f"Signature check failed for {sig_url}: {error}.") from error
        packages = parse_packages(text.decode(errors="replace"))
        for package in packages:
            package.url = join_url(url, package.filename)
            package.feed = name
        feeds.append(Feed(name, url, packages))
    if not has_local:
        feeds.append(local_feed(ib_dir / "packages", apk=False))
    return feeds


def load_apk_feeds(ib_dir: Path, keys_dir: Path) -> list[Feed]:
    """Every index of ``repositories``; apk always verifies remote indexes."""
    conf = ib_dir / "repositories"
    feeds: list[Feed] = []
    for url in read_apk_repositories(conf.read_text() if conf.exists() else ""):
        if is_local(url, ib_dir):
            continue
        data = fetch(url, ib_dir)
        try:
            packages = parse_demo_adb(data, keys_dir)
        except FeedError as error:
            raise FeedError(f"ERROR: {url}: UNTRUSTED signature ({error})") from error
        base = url.rsplit("/", 1)[0] if "/" in url else "."
        for package in packages:
            package.url = join_url(base, package.filename)
            package.feed = base
        feeds.append(Feed(base, url, packages))
    feeds.append(local_feed(ib_dir / "packages", apk=True))
    return feeds


def download(package: Package, ib_dir: Path) -> bytes:
    """The package file, checked against the index's sha256."""
    data = fetch(package.url, ib_dir)
    digest = hashlib.sha256(data).hexdigest()
    if package.sha256 and digest != package.sha256:
        raise FeedError(f"Checksum mismatch for {package.filename}: expected {package.sha256}, got {digest}")
    return data
