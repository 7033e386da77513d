"""usign/signify Ed25519 keys and signatures, as OpenWrt signs ``sha256sums`` and ``Packages``.

Every file has two lines, ``untrusted comment: …`` and one base64 line; only the base64 matters:

* public key (42 bytes): ``b"Ed"`` | keynum[8] | ed25519 public key[32]
* signature (74 bytes): ``b"Ed"`` | keynum[8] | ed25519 signature[64] over the whole file (no prehash)
* secret key (104 bytes): ``b"Ed"`` | ``b"BK"`` | kdfrounds u32 | salt[16] | checksum[8] | keynum[8] |
  seed[32] ‖ public key[32]; only unencrypted keys (rounds 0) are supported, as usign itself requires.

The fingerprint (key id) is ``keynum.hex()``; OpenWrt names key files in ``keys/`` by it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from asud.errors import SignatureError

__all__ = [
    "PublicKey",
    "SecretKey",
    "Signature",
    "parse_public_key",
    "parse_secret_key",
    "parse_signature",
    "verify",
]

_ALGORITHM = b"Ed"
_KDF_ALGORITHM = b"BK"
_COMMENT_PREFIX = "untrusted comment: "


def _decode_payload(text: str, expected_length: int, what: str) -> bytes:
    """The base64 payload of a usign file: the last non-empty line, or the only line."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"empty {what}")
    if len(lines) > 2 or (len(lines) == 2 and not lines[0].startswith(_COMMENT_PREFIX.strip())):
        raise ValueError(f"{what} must be 'untrusted comment: …' plus one base64 line")
    try:
        payload = base64.b64decode(lines[-1], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{what} is not valid base64") from exc
    if len(payload) != expected_length or payload[:2] != _ALGORITHM:
        raise ValueError(f"{what} is not an Ed25519 usign {what} ({len(payload)} bytes)")
    return payload


def _two_lines(comment: str, payload: bytes) -> str:
    return f"{_COMMENT_PREFIX}{comment}\n{base64.b64encode(payload).decode('ascii')}\n"


@dataclass(frozen=True, slots=True)
class PublicKey:
    keynum: bytes
    key: bytes

    @property
    def fingerprint(self) -> str:
        """16 hex digits: the key id usign prints and the file name under ``keys/``."""
        return self.keynum.hex()

    def to_text(self, comment: str | None = None) -> str:
        """The two-line ``.pub`` form that usign, signify and opkg read."""
        return _two_lines(comment or f"public key {self.fingerprint}", _ALGORITHM + self.keynum + self.key)


@dataclass(frozen=True, slots=True)
class Signature:
    keynum: bytes
    sig: bytes

    @property
    def fingerprint(self) -> str:
        return self.keynum.hex()


def parse_public_key(text: str) -> PublicKey:
    """A public key from its two-line form or the bare base64 line; ``ValueError`` if malformed."""
    payload = _decode_payload(text, 42, "public key")
    return PublicKey(keynum=payload[2:10], key=payload[10:])


def parse_signature(text: str) -> Signature:
    """A signature from a ``.sig`` file; ``SignatureError`` if malformed (it comes from upstream)."""
    try:
        payload = _decode_payload(text, 74, "signature")
    except ValueError as exc:
        raise SignatureError(f"malformed usign signature: {exc}") from exc
    return Signature(keynum=payload[2:10], sig=payload[10:])


def verify(message: bytes, signature_text: str, keys: Iterable[PublicKey]) -> PublicKey:
    """The key among ``keys`` that signed ``message``; ``SignatureError`` when none did.

    Like signify (and unlike ``usign -p``), the signature's key number must match the key's, so a
    signature made by an untrusted key is refused even before the curve arithmetic.
    """
    signature = parse_signature(signature_text)
    candidates = [key for key in keys if key.keynum == signature.keynum]
    if not candidates:
        raise SignatureError(f"signature made by key {signature.fingerprint}, which is not trusted")
    for key in candidates:
        try:
            VerifyKey(key.key).verify(message, signature.sig)
        except BadSignatureError:
            continue
        return key
    raise SignatureError(f"signature by key {signature.fingerprint} does not match the signed file")


@dataclass(frozen=True, slots=True)
class SecretKey:
    """An unencrypted usign secret key; ``seed`` is the RFC 8032 seed the Ed25519 key expands from."""

    keynum: bytes
    seed: bytes
    salt: bytes = bytes(16)

    @classmethod
    def generate(cls, seed: bytes) -> SecretKey:
        """A key derived only from ``seed`` (32 bytes), so the demo upstream is the same on every run."""
        if len(seed) != 32:
            raise ValueError("a usign seed is 32 bytes")
        # keynum and salt come from the seed too; a domain label keeps them apart from the key itself.
        derived = hashlib.sha512(b"asud usign keynum+salt\0" + seed).digest()
        return cls(keynum=derived[:8], seed=seed, salt=derived[8:24])

    @property
    def _signing_key(self) -> SigningKey:
        return SigningKey(self.seed)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(keynum=self.keynum, key=bytes(self._signing_key.verify_key))

    @property
    def fingerprint(self) -> str:
        return self.keynum.hex()

    def sign(self, message: bytes) -> str:
        """The two-line ``.sig`` text over ``message``, as ``usign -S`` writes it."""
        signature = self._signing_key.sign(message).signature
        return _two_lines(f"signed by key {self.fingerprint}", _ALGORITHM + self.keynum + signature)

    def to_text(self, comment: str | None = None) -> str:
        """The 104-byte secret-key file (rounds 0) that ``usign -S -s`` and ``signify -S -s`` accept."""
        secret64 = self.seed + self.public_key.key
        checksum = hashlib.sha512(secret64).digest()[:8]
        payload = (
            _ALGORITHM + _KDF_ALGORITHM + struct.pack(">I", 0) + self.salt + checksum + self.keynum + secret64
        )
        return _two_lines(comment or f"private key {self.fingerprint}", payload)


def parse_secret_key(text: str) -> SecretKey:
    """A secret key as ``usign -G``/``signify -G -n`` write it; ``ValueError`` if encrypted or corrupt."""
    payload = _decode_payload(text, 104, "secret key")
    kdf_algorithm, rounds = payload[2:4], struct.unpack(">I", payload[4:8])[0]
    salt, checksum, keynum, secret64 = payload[8:24], payload[24:32], payload[32:40], payload[40:104]
    if kdf_algorithm != _KDF_ALGORITHM:
        raise ValueError("secret key uses an unknown KDF")
    if rounds != 0:
        raise ValueError("secret key is password-protected (kdfrounds ≠ 0); usign cannot use it either")
    if hashlib.sha512(secret64).digest()[:8] != checksum:
        raise ValueError("secret key checksum does not match")
    key = SecretKey(keynum=keynum, seed=secret64[:32], salt=salt)
    if key.public_key.key != secret64[32:]:
        raise ValueError("secret key's public half does not belong to its seed")
    return key
