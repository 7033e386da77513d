"""Signing keys of a workspace: the ImageBuilder's own ``keys/`` and extra keys a build request brings
(small files, written directly).

Extra keys (``repository_keys``) come from clients, so their text is checked strictly before anything is
written: a usign public key is exactly ``untrusted comment: <printable text>`` plus one base64 line of 42
bytes (or the bare base64 line), and is written as ``keys/<fingerprint>`` in a normalised form. A PEM
public key (what apk-era feeds sign with) must be one ``BEGIN/END PUBLIC KEY`` block of valid base64 and is
written as ``keys/asud-<sha256[:16]>.pem``. Anything else is refused with ``BadRequest``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from asud.errors import BadRequest
from asud.upstream.usign import PublicKey, parse_public_key

__all__ = ["install_keys", "read_usign_keys", "validate_key_text"]

#: Longest key text accepted from a request.
MAX_KEY_TEXT = 4096

_COMMENT = re.compile(r"^untrusted comment: [\x20-\x7e]{0,200}$")
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_PEM = re.compile(
    r"^-----BEGIN PUBLIC KEY-----\n"
    r"((?:[A-Za-z0-9+/]{1,76}\n){1,20}?[A-Za-z0-9+/]*={0,2}\n?)"
    r"-----END PUBLIC KEY-----$"
)


def validate_key_text(text: str) -> tuple[str, str]:
    """``(file name, normalised text)`` of one key from a request; ``BadRequest`` unless it is a clean key."""
    if not isinstance(text, str) or len(text) > MAX_KEY_TEXT:
        raise BadRequest("repository key is too long or not text")
    stripped = text.strip().replace("\r\n", "\n")
    if stripped.startswith("-----BEGIN"):
        match = _PEM.match(stripped)
        if not match:
            raise BadRequest("repository key is not a single PEM public key block")
        try:
            der = base64.b64decode(match.group(1).replace("\n", ""), validate=True)
        except (binascii.Error, ValueError) as error:
            raise BadRequest("repository key PEM block is not valid base64") from error
        if not 32 <= len(der) <= 1024 or der[0] != 0x30:
            raise BadRequest("repository key PEM block is not a public key")
        name = f"asud-{hashlib.sha256(der).hexdigest()[:16]}.pem"
        return name, stripped + "\n"
    lines = stripped.split("\n")
    if len(lines) == 2 and not _COMMENT.match(lines[0]):
        raise BadRequest("repository key comment line must be 'untrusted comment: …' in printable ASCII")
    if len(lines) not in (1, 2) or not _BASE64_LINE.match(lines[-1]):
        raise BadRequest("repository key must be a usign public key (comment line + base64 line)")
    try:
        key = parse_public_key(stripped)
    except ValueError as error:
        raise BadRequest(f"repository key is not a usign public key: {error}") from error
    return key.fingerprint, key.to_text()


def install_keys(keys_dir: Path, key_texts: Sequence[str]) -> list[PublicKey]:
    """Validate every key first, then write them into ``keys_dir``; returns the usign keys among them."""
    validated = [validate_key_text(text) for text in key_texts]
    keys_dir.mkdir(parents=True, exist_ok=True)
    usign: list[PublicKey] = []
    for name, text in validated:
        target = keys_dir / name
        target.unlink(missing_ok=True)  # may be a hard link into the cache; never write through it
        target.write_text(text, encoding="ascii")
        if not name.endswith(".pem"):
            usign.append(parse_public_key(text))
    return usign


def read_usign_keys(keys_dir: Path) -> list[PublicKey]:
    """The usign public keys in an ImageBuilder's ``keys/`` (PEM and unreadable files are skipped)."""
    keys: list[PublicKey] = []
    if not keys_dir.is_dir():
        return keys
    for path in sorted(keys_dir.iterdir()):
        if not path.is_file() or path.stat().st_size > MAX_KEY_TEXT:
            continue
        try:
            keys.append(parse_public_key(path.read_text(encoding="ascii")))
        except (ValueError, UnicodeDecodeError):
            continue
    return keys
