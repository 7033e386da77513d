"""The demo distribution's usign key and the signatures it makes.

One key per tree, derived from the generator seed, so the same seed gives the same fingerprint and the
same ``.sig`` bytes (Ed25519 signatures are deterministic).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from asud.upstream.usign import SecretKey

__all__ = ["demo_key", "sign_file"]


def demo_key(seed: int, distribution: str = "openwrt") -> SecretKey:
    """The usign key of ``distribution``'s tree generated with ``seed`` (each distribution its own key)."""
    label = f"asud demo upstream key {seed}" if distribution == "openwrt" else (
        f"asud demo upstream key {distribution} {seed}"
    )
    return SecretKey.generate(hashlib.sha256(label.encode()).digest())


def sign_file(path: Path, key: SecretKey) -> Path:
    """Write ``<path>.sig`` as ``usign -S -m <path>`` does; returns the signature's path."""
    signature = path.with_name(path.name + ".sig")
    signature.write_text(key.sign(path.read_bytes()))
    return signature
