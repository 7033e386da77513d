"""Version comparison of opkg (dpkg rules) and apk-tools, and dependency-relation checks.

Dependencies name a version relation; whether a candidate package satisfies it depends on which
package manager's ordering applies, so both orderings live here side by side.
"""

from __future__ import annotations

import re

# --- opkg (libopkg pkg.c verrevcmp) ---------------------------------------------------------------


def _order(char: str) -> int:
    if char == "~":
        return -1
    if char.isdigit():
        return 0
    if not char:
        return 0
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) else 0
            bc = _order(b[j]) if j < len(b) else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def _split_opkg(version: str) -> tuple[int, str, str]:
    epoch = 0
    if ":" in version:
        head, _, rest = version.partition(":")
        if head.isdigit():
            epoch, version = int(head), rest
    upstream, sep, revision = version.rpartition("-")
    if not sep:
        return epoch, version, ""
    return epoch, upstream, revision


def opkg_compare(a: str, b: str) -> int:
    """Negative, zero or positive as opkg orders version ``a`` against ``b``."""
    ea, ua, ra = _split_opkg(a)
    eb, ub, rb = _split_opkg(b)
    if ea != eb:
        return ea - eb
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


# --- apk-tools 3 (src/version.c) -----------------------------------------------------------------

_SUFFIXES = {"alpha": 0, "beta": 1, "pre": 2, "rc": 3, "": 4, "cvs": 5, "svn": 6, "git": 7, "hg": 8, "p": 9}
_PRE_SUFFIX_LIMIT = 4
# Token types in apk order: digit < letter < suffix < suffix_no < hash < revision < end.
_DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _HASH, _REVISION, _END, _INVALID = range(8)
_APK_VALID = re.compile(
    r"^\d+(\.\d+)*[a-z]?(_(alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*(~[0-9a-f]+)?(-r\d+)?$"
)


def _apk_tokens(version: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    pos = 0
    state = _DIGIT
    while pos < len(version):
        if (state in (_DIGIT, _SUFFIX_NO) and version[pos].isdigit()) or state == _DIGIT:
            match = re.match(r"\d+", version[pos:])
            if match is None:
                return [*tokens, (_INVALID, version[pos:])]
            tokens.append((state if state == _SUFFIX_NO else _DIGIT, match.group()))
            pos += match.end()
        elif state == _LETTER:
            tokens.append((_LETTER, version[pos]))
            pos += 1
        elif state == _SUFFIX:
            match = re.match(r"[a-z]+", version[pos:])
            name = match.group() if match else ""
            tokens.append((_SUFFIX, name))
            pos += len(name)
        elif state == _HASH:
            match = re.match(r"[0-9a-f]+", version[pos:])
            text = match.group() if match else ""
            tokens.append((_HASH, text))
            pos += len(text)
        elif state == _REVISION:
            match = re.match(r"\d+", version[pos:])
            text = match.group() if match else ""
            tokens.append((_REVISION, text))
            pos += len(text)
        if pos >= len(version):
            break
        char = version[pos]
        if char == ".":
            state, pos = _DIGIT, pos + 1
        elif char.isalpha() and state == _DIGIT and tokens[-1][0] == _DIGIT:
            state = _LETTER
        elif char == "_":
            state, pos = _SUFFIX, pos + 1
        elif char.isdigit() and state == _SUFFIX:
            state = _SUFFIX_NO
        elif char == "~":
            state, pos = _HASH, pos + 1
        elif version.startswith("-r", pos):
            state, pos = _REVISION, pos + 2
        else:
            return [*tokens, (_INVALID, version[pos:])]
    return tokens


def apk_compare(a: str, b: str) -> int:
    """Negative, zero or positive as apk-tools orders version ``a`` against ``b``."""
    if not (_APK_VALID.match(a) and _APK_VALID.match(b)):
        return (a > b) - (a < b)
    ta, tb = _apk_tokens(a), _apk_tokens(b)
    index = 0
    while index < len(ta) and index < len(tb) and ta[index][0] == tb[index][0]:
        kind, va = ta[index]
        vb = tb[index][1]
        if kind in (_DIGIT, _SUFFIX_NO, _REVISION):
            if kind == _DIGIT and index > 0 and (va.startswith("0") or vb.startswith("0")):
                if va != vb:
                    return (va > vb) - (va < vb)
            elif int(va or 0) != int(vb or 0):
                return int(va or 0) - int(vb or 0)
        elif kind == _SUFFIX:
            if _SUFFIXES.get(va, 4) != _SUFFIXES.get(vb, 4):
                return _SUFFIXES.get(va, 4) - _SUFFIXES.get(vb, 4)
        elif va != vb:
            return (va > vb) - (va < vb)
        index += 1
    kind_a = ta[index][0] if index < len(ta) else _END
    kind_b = tb[index][0] if index < len(tb) else _END
    if kind_a == kind_b:
        return 0
    # A trailing pre-release suffix makes its side older.
    if kind_a == _SUFFIX and _SUFFIXES.get(ta[index][1], 4) < _PRE_SUFFIX_LIMIT:
        return -1
    if kind_b == _SUFFIX and _SUFFIXES.get(tb[index][1], 4) < _PRE_SUFFIX_LIMIT:
        return 1
    return 1 if kind_a < kind_b else -1


def satisfies(version: str, op: str | None, wanted: str | None, apk: bool) -> bool:
    """Whether ``version`` meets ``op wanted`` (opkg: ``<``/``>`` mean ``<=``/``>=``)."""
    if not op or wanted is None:
        return True
    cmp = apk_compare(version, wanted) if apk else opkg_compare(version, wanted)
    if op in ("=", "=="):
        return cmp == 0
    if op == "<<" or (op == "<" and apk):
        return cmp < 0
    if op == ">>" or (op == ">" and apk):
        return cmp > 0
    if op in ("<=", "<"):
        return cmp <= 0
    if op in (">=", ">"):
        return cmp >= 0
    if op == "~":
        return version.startswith(wanted)
    return False
