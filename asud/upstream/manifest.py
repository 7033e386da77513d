"""What ``make manifest`` prints and the ``BIN_DIR/*.manifest`` file: installed package → version.

opkg and current apk print ``name - version``; apk IBs of Nov 2024 to Sep 2025 print ``name version``.
Both are accepted, line by line. Lines of any other shape (stray make chatter) are ignored.
"""

from __future__ import annotations

__all__ = ["format_manifest", "parse_manifest"]


def parse_manifest(text: str) -> dict[str, str]:
    packages: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "-":
            packages[parts[0]] = parts[2]
        elif len(parts) == 2:
            packages[parts[0]] = parts[1]
    return packages


def format_manifest(packages: dict[str, str]) -> str:
    """The ``name - version`` form, sorted by name, as ``make image`` writes it."""
    return "".join(f"{name} - {packages[name]}\n" for name in sorted(packages))
