"""Version ordering: package versions (opkg and apk rules) and OpenWrt release numbers.

The two package managers disagree on real OpenWrt versions (``1.01`` vs ``1.1``, ``x~hash-r1`` vs
``x-r1``), so a comparison always names the manager whose rules apply. Release numbers
(``24.10.0-rc1``, ``24.10-SNAPSHOT``) have their own order, used for upgrade checks and branch lists.
"""

from __future__ import annotations

import sys
from typing import Literal

__all__ = [
    "apk_compare",
    "apk_satisfies",
    "apk_version_valid",
    "branch_of",
    "compare_packages",
    "opkg_compare",
    "opkg_satisfies",
    "release_key",
    "revision_number",
]


# -- opkg (dpkg verrevcmp) ---------------------------------------------------------------------------


_DIGITS = frozenset("0123456789")


def _order(char: str) -> int:
    """Weight of one non-digit character: ``~`` before everything, letters before other symbols."""
    if char == "~":
        return -1
    if char in _DIGITS:
        return 0
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(left: str, right: str) -> int:
    i = j = 0
    n, m = len(left), len(right)
    while i < n or j < m:
        while (i < n and left[i] not in _DIGITS) or (j < m and right[j] not in _DIGITS):
            lw = _order(left[i]) if i < n else 0
            rw = _order(right[j]) if j < m else 0
            if lw != rw:
                return -1 if lw < rw else 1
            i += 1
            j += 1
        while i < n and left[i] == "0":
            i += 1
        while j < m and right[j] == "0":
            j += 1
        first_diff = 0
        while i < n and j < m and left[i] in _DIGITS and right[j] in _DIGITS:
            if not first_diff:
                first_diff = ord(left[i]) - ord(right[j])
            i += 1
            j += 1
        if i < n and left[i] in _DIGITS:
            return 1
        if j < m and right[j] in _DIGITS:
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def _opkg_split(version: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in version:
        head, _, rest = version.partition(":")
        if head.isascii() and head.isdigit():
            epoch, version = int(head), rest
    upstream, dash, revision = version.rpartition("-")
    if not dash:
        return epoch, version, ""
    return epoch, upstream, revision


def opkg_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as opkg orders ``a`` and ``b``: epoch, then upstream, then the part after the last ``-``."""
    ea, ua, ra = _opkg_split(a)
    eb, ub, rb = _opkg_split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def opkg_satisfies(version: str, op: str, wanted: str) -> bool:
    """Whether ``version`` meets ``op wanted``; ``<`` and ``>`` mean ``<=`` and ``>=`` (dpkg legacy)."""
    result = opkg_compare(version, wanted)
    if op == "<<":
        return result < 0
    if op in ("<=", "<"):
        return result <= 0
    if op in ("=", "=="):
        return result == 0
    if op in (">=", ">"):
        return result >= 0
    if op == ">>":
        return result > 0
    raise ValueError(f"unknown opkg version relation {op!r}")


# -- apk-tools 3 ----------------------------------------------------------------------------------------

# Token types, in the order apk-tools gives them: a version that ends with a "bigger" type is smaller.
_INITIAL_DIGIT, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _COMMIT_HASH, _REVISION_NO, _END, _INVALID = range(9)
_SUFFIX_NONE = 5
_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4, "cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}
_HEX = frozenset("0123456789abcdefABCDEF")


class _Tokens:
    """Walks an apk version one token at a time, as apk-tools' ``token_first``/``token_next`` do."""

    __slots__ = ("number", "pos", "suffix", "text", "token", "value")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.token = _INITIAL_DIGIT
        self.suffix = 0
        self.number = 0
        self.value = ""
        self._digits()

    def _digits(self) -> None:
        start = self.pos
        text = self.text
        while self.pos < len(text) and "0" <= text[self.pos] <= "9":
            self.pos += 1
        self.value = text[start : self.pos]
        if not self.value:
            self.token = _INVALID
        else:
            self.number = int(self.value)

    def _span(self, allowed: frozenset[str] | None) -> str:
        start = self.pos
        text = self.text
        if allowed is None:
            while self.pos < len(text) and "a" <= text[self.pos] <= "z":
                self.pos += 1
        else:
            while self.pos < len(text) and text[self.pos] in allowed:
                self.pos += 1
        return text[start : self.pos]

    def next(self) -> None:
        text, token = self.text, self.token
        if self.pos >= len(text):
            self.token = _END
            return
        char = text[self.pos]
        if "a" <= char <= "z":
            if token > _DIGIT:
                self.token = _INVALID
                return
            self.value = char
            self.token = _LETTER
            self.pos += 1
        elif char == "." or "0" <= char <= "9":
            if char == ".":
                if token > _DIGIT:
                    self.token = _INVALID
                    return
                self.pos += 1
            if token in (_INITIAL_DIGIT, _DIGIT):
                self.token = _DIGIT
            elif token == _SUFFIX:
                self.token = _SUFFIX_NO
            else:
                self.token = _INVALID
                return
            self._digits()
        elif char == "_":
            if token > _SUFFIX_NO:
                self.token = _INVALID
                return
            self.pos += 1
            self.value = self._span(None)
            self.suffix = _SUFFIXES.get(self.value, 0)
            self.token = _SUFFIX if self.suffix else _INVALID
        elif char == "~":
            if token >= _COMMIT_HASH:
                self.token = _INVALID
                return
            self.pos += 1
            self.value = self._span(_HEX)
            self.token = _COMMIT_HASH if self.value else _INVALID
        elif char == "-":
            if token >= _REVISION_NO or not text.startswith("-r", self.pos):
                self.token = _INVALID
                return
            self.pos += 2
            self.token = _REVISION_NO
            self._digits()
        else:
            self.token = _INVALID


def _string_order(a: str, b: str) -> int:
    return (a > b) - (a < b)


def _token_compare(ta: _Tokens, tb: _Tokens) -> int:
    token = ta.token
    if token == _DIGIT and (ta.value[0] == "0" or tb.value[0] == "0"):
        # A leading zero means a fractional-looking part: compare as text (Gentoo rule).
        return _string_order(ta.value, tb.value)
    if token in (_INITIAL_DIGIT, _DIGIT, _SUFFIX_NO, _REVISION_NO):
        return (ta.number > tb.number) - (ta.number < tb.number)
    if token == _SUFFIX:
        return (ta.suffix > tb.suffix) - (ta.suffix < tb.suffix)
    return _string_order(ta.value, tb.value)


def _apk_compare(a: str, b: str, fuzzy: bool) -> int:
    ta, tb = _Tokens(a), _Tokens(b)
    while ta.token == tb.token and ta.token < _END:
        result = _token_compare(ta, tb)
        if result:
            return result
        ta.next()
        tb.next()
    if ta.token == tb.token:
        if ta.token == _INVALID:
            # Both broke at the same place: order the rest as text so the order stays total.
            return _string_order(a[ta.pos :], b[tb.pos :])
        return 0
    if tb.token == _END and fuzzy:
        return 0
    # Equal so far: the longer version is newer, unless what follows is a pre-release suffix.
    if ta.token == _SUFFIX and ta.suffix < _SUFFIX_NONE:
        return -1
    if tb.token == _SUFFIX and tb.suffix < _SUFFIX_NONE:
        return 1
    return -1 if ta.token > tb.token else 1


def apk_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as apk-tools 3 orders ``a`` and ``b`` (``digit{.digit}{letter}{_suf#}{~hash}{-r#}``)."""
    if a == b:
        return 0
    return _apk_compare(a, b, fuzzy=False)


def apk_version_valid(version: str) -> bool:
    """Whether apk-tools accepts ``version`` at all (invalid ones still get a total order)."""
    tokens = _Tokens(version)
    while tokens.token < _END:
        tokens.next()
    return tokens.token == _END


def apk_satisfies(version: str, op: str, wanted: str) -> bool:
    """Whether ``version`` meets ``op wanted``: ``<``, ``<=``, ``=``, ``>=``, ``>``, ``!=``, and the
    prefix matches ``~`` (``3.6.9 ~ 3.6``), ``<~``, ``>~``; a leading ``!`` negates any of them."""
    if op.startswith("!") and op != "!=":
        return not apk_satisfies(version, op[1:], wanted)
    fuzzy = "~" in op
    result = _apk_compare(version, wanted, fuzzy=fuzzy) if version != wanted else 0
    if op == "!=":
        return result != 0
    allowed = set()
    for char in op:
        if char == "<":
            allowed.add(-1)
        elif char == ">":
            allowed.add(1)
        elif char in "=~":
            allowed.add(0)
        else:
            raise ValueError(f"unknown apk version relation {op!r}")
    if not allowed:
        raise ValueError("empty apk version relation")
    return result in allowed


def compare_packages(a: str, b: str, manager: Literal["opkg", "apk"]) -> int:
    """Compare two package versions by the rules of ``manager``."""
    if manager == "apk":
        return apk_compare(a, b)
    if manager == "opkg":
        return opkg_compare(a, b)
    raise ValueError(f"unknown package manager {manager!r}")


# -- OpenWrt releases ------------------------------------------------------------------------------------

_AFTER_EVERY_RELEASE = sys.maxsize


def _int_or_zero(part: str) -> int:
    return int(part) if part.isascii() and part.isdigit() else 0


def release_key(version: str) -> tuple[int, ...]:
    """A sort key for OpenWrt release numbers.

    ``24.10.0-rc1 < 24.10.0 < 24.10.1 < 24.10-SNAPSHOT < 25.12.0 < … < SNAPSHOT``, and
    ``19.07.9 < 19.07.10`` (numbers compare as numbers, unlike the order of ``versions_list``).
    """
    if version.upper() == "SNAPSHOT":
        return (1, 0, 0, 0, 0, 0)
    base, _, suffix = version.partition("-")
    parts = [_int_or_zero(part) for part in base.split(".")[:3]]
    parts += [0] * (3 - len(parts))
    major, minor, patch = parts
    if suffix.upper() == "SNAPSHOT":
        return (0, major, minor, _AFTER_EVERY_RELEASE, 0, 0)
    if not suffix:
        return (0, major, minor, patch, 1, 0)
    # -rcN and any other pre-release label sort before the final release, by their number.
    return (0, major, minor, patch, 0, _int_or_zero(suffix.lstrip("abcdefghijklmnopqrstuvwxyz")))


def branch_of(version: str) -> str:
    """``24.10.3`` → ``24.10``, ``24.10-SNAPSHOT`` → ``24.10``, ``SNAPSHOT`` → ``SNAPSHOT``."""
    if version.upper() == "SNAPSHOT":
        return "SNAPSHOT"
    base = version.partition("-")[0]
    return ".".join(base.split(".")[:2])


def revision_number(version_code: str) -> int | None:
    """The commit count of a ``version_code``: ``r28427-6df0e3d02a`` → 28427, ``r1+2-abc`` → 1."""
    if not version_code.startswith("r"):
        return None
    digits = ""
    for char in version_code[1:]:
        if char not in _DIGITS:
            break
        digits += char
    return int(digits) if digits else None
