"""usign signatures against the published vectors and the real signify binary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from asud.errors import SignatureError
from asud.upstream.usign import (
    PublicKey,
    SecretKey,
    parse_public_key,
    parse_secret_key,
    parse_signature,
    verify,
)
from tests.support.requirements import require_executable

# upstream-formats.md §4.2, vector 1 (openwrt/asu tests/test_common.py).
ASU_PUBLIC = "RWSrHfFmlHslUcLbXFIRp+eEikWF9z1N77IJiX5Bt/nJd1a/x+L+SU89"
ASU_SIGNATURE = (
    "untrusted comment: signed by key ab1df166947b2551\n"
    "RWSrHfFmlHslUQ9dCB1AJr/PoIIbBJJKtofZ5frLOuG03SlwAwgU1tYOaJs2eVGdo1C8S9LNcMBLPIfDDCWSdrLK3WJ6JV6HNQM=\n"
)
SEED = bytes(range(32))


def test_published_vector_verifies() -> None:
    key = parse_public_key(ASU_PUBLIC)
    assert key.fingerprint == "ab1df166947b2551"
    assert verify(b"test\n", ASU_SIGNATURE, [key]) == key


def test_published_vector_rejects_tampered_message() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(b"test!\n", ASU_SIGNATURE, [parse_public_key(ASU_PUBLIC)])


def test_wrong_key_is_rejected_by_keynum() -> None:
    other = SecretKey.generate(SEED).public_key
    with pytest.raises(SignatureError, match=r"ab1df166947b2551.*not trusted"):
        verify(b"test\n", ASU_SIGNATURE, [other])


def test_same_keynum_but_other_key_is_rejected() -> None:
    real = parse_public_key(ASU_PUBLIC)
    impostor = PublicKey(keynum=real.keynum, key=SecretKey.generate(SEED).public_key.key)
    with pytest.raises(SignatureError):
        verify(b"test\n", ASU_SIGNATURE, [impostor])


def test_malformed_signature_is_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        verify(b"x", "untrusted comment: x\nnot base64!!\n", [parse_public_key(ASU_PUBLIC)])
    with pytest.raises(SignatureError):
        parse_signature("untrusted comment: x\n" + ASU_PUBLIC + "\n")  # a key, not a signature


def test_public_key_two_line_form_round_trips() -> None:
    key = parse_public_key(ASU_PUBLIC)
    text = key.to_text()
    assert text.startswith("untrusted comment: public key ab1df166947b2551\n")
    assert text.splitlines()[1] == ASU_PUBLIC
    assert parse_public_key(text) == key
    assert key.to_text("my key").startswith("untrusted comment: my key\n")
    with pytest.raises(ValueError):
        parse_public_key("RWSr")


def test_generated_key_is_deterministic_and_round_trips() -> None:
    key = SecretKey.generate(SEED)
    assert SecretKey.generate(SEED) == key
    assert SecretKey.generate(bytes(32)).keynum != key.keynum
    text = key.to_text()
    assert parse_secret_key(text) == key
    signature = key.sign(b"hello")
    assert signature.startswith(f"untrusted comment: signed by key {key.fingerprint}\n")
    assert key.sign(b"hello") == signature  # Ed25519 is deterministic
    assert verify(b"hello", signature, [parse_public_key(ASU_PUBLIC), key.public_key]) == key.public_key
    with pytest.raises(ValueError):
        SecretKey.generate(b"short")


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=30, check=False)


def test_signify_verifies_our_signature(tmp_path: Path) -> None:
    signify = require_executable("signify-openbsd")
    key = SecretKey.generate(SEED)
    message = tmp_path / "sha256sums"
    message.write_bytes(b"0" * 64 + b" *openwrt-imagebuilder-x86-64.Linux-x86_64.tar.zst\n")
    (tmp_path / "key.pub").write_text(key.public_key.to_text())
    (tmp_path / "sha256sums.sig").write_text(key.sign(message.read_bytes()))
    ok = _run(signify, "-V", "-p", tmp_path / "key.pub", "-m", message, "-x", tmp_path / "sha256sums.sig")
    assert ok.returncode == 0, ok.stderr
    message.write_bytes(message.read_bytes() + b"tampered\n")
    bad = _run(signify, "-V", "-p", tmp_path / "key.pub", "-m", message, "-x", tmp_path / "sha256sums.sig")
    assert bad.returncode != 0


def test_signify_signs_with_our_secret_key_file(tmp_path: Path) -> None:
    signify = require_executable("signify-openbsd")
    key = SecretKey.generate(SEED)
    (tmp_path / "key.sec").write_text(key.to_text())
    message = tmp_path / "Packages"
    message.write_bytes(b"Package: base-files\nVersion: 1\n")
    run = _run(signify, "-S", "-s", tmp_path / "key.sec", "-m", message)
    assert run.returncode == 0, run.stderr
    signature = (tmp_path / "Packages.sig").read_text()
    assert verify(message.read_bytes(), signature, [key.public_key]) == key.public_key
    assert signature == key.sign(message.read_bytes()).replace(
        f"signed by key {key.fingerprint}", "verify with key.pub")


def test_signify_made_key_and_signature_verify_here(tmp_path: Path) -> None:
    signify = require_executable("signify-openbsd")
    run = _run(signify, "-G", "-n", "-p", tmp_path / "k.pub", "-s", tmp_path / "k.sec")
    assert run.returncode == 0, run.stderr
    message = tmp_path / "sha256sums"
    message.write_bytes(b"data\n")
    run = _run(signify, "-S", "-s", tmp_path / "k.sec", "-m", message)
    assert run.returncode == 0, run.stderr
    public = parse_public_key((tmp_path / "k.pub").read_text())
    signature = (tmp_path / "sha256sums.sig").read_text()
    assert verify(b"data\n", signature, [public]) == public
    secret = parse_secret_key((tmp_path / "k.sec").read_text())
    assert secret.public_key == public
    with pytest.raises(SignatureError):
        verify(b"data!\n", signature, [public])
