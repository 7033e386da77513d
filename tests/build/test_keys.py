"""Extra repository keys from requests are validated strictly before anything is written.

Ported from sysup's tests/imagebuilders/test_keys.py (same assertions)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from asud.build.keys import install_keys, read_usign_keys, validate_key_text
from asud.errors import BadRequest
from asud.upstream.usign import SecretKey

KEY = SecretKey.generate(b"\x01" * 32).public_key
_DER = base64.b64encode(b"\x30" + bytes(90)).decode()
PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    + "\n".join(_DER[i : i + 64] for i in range(0, len(_DER), 64))
    + "\n-----END PUBLIC KEY-----"
)


def test_usign_key_forms_are_accepted_and_normalised() -> None:
    bare = KEY.to_text().splitlines()[1]
    for text in (KEY.to_text(), bare, f"  {KEY.to_text()}\r\n"):
        assert validate_key_text(text) == (KEY.fingerprint, KEY.to_text())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "untrusted comment: x\n",
        f"untrusted comment: x\n{KEY.to_text().splitlines()[1]}\nextra line",
        f"untrusted comment: \x1b[31mred\n{KEY.to_text().splitlines()[1]}",
        f"comment: x\n{KEY.to_text().splitlines()[1]}",
        "untrusted comment: x\nRWQ$(id)",
        "untrusted comment: x\n" + base64.b64encode(b"Ed" + bytes(20)).decode(),
        "x" * 5000,
        "-----BEGIN PUBLIC KEY-----\nnot base64!\n-----END PUBLIC KEY-----",
        PEM + "\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_bad_keys_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        validate_key_text(text)


def test_install_writes_usign_and_pem_keys(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    cached = tmp_path / "cached"
    cached.write_text("cache content")
    (keys_dir / KEY.fingerprint).hardlink_to(cached)  # as a workspace links the IB's keys
    usign = install_keys(keys_dir, [KEY.to_text(), PEM])
    assert usign == [KEY]
    assert (keys_dir / KEY.fingerprint).read_text() == KEY.to_text()
    assert cached.read_text() == "cache content"
    [pem] = keys_dir.glob("asud-*.pem")
    assert pem.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert read_usign_keys(keys_dir) == [KEY]


def test_one_bad_key_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(BadRequest):
        install_keys(tmp_path / "keys", [KEY.to_text(), "garbage"])
    assert not (tmp_path / "keys").exists()
