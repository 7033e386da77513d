"""Device search of the web builder: find a device by what is printed on it (vendor, model, variant, or
the board name LuCI shows).

People type "archer c7", "tplink,archer-c7-v5", "Archr" or "wr842"; every one should find the device.
A query is split into words; each word must match some word of a device, exactly, as a prefix, inside it,
or within a small edit distance (typos). Matching runs over the distinct words of a version's devices
(a few thousand even at the real download server's scale), not over every device, so it stays instant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

#: Devices answered for one query.
DEFAULT_LIMIT = 30
#: Score of a query word by how it matches a device word.
EXACT, PREFIX, INSIDE = 1.0, 0.85, 0.6
#: A fuzzy match scores this much at most (less per edit).
FUZZY = 0.5

_SPLIT = re.compile(r"[^a-z0-9]+")


def words_of(text: str) -> list[str]:
    """Lowercase alphanumeric words: ``"TP-Link Archer C7"`` → ``["tp", "link", "archer", "c7"]``."""
    return [word for word in _SPLIT.split(text.lower()) if word]


def title_text(title: Mapping[str, str]) -> str:
    """``{"vendor", "model", "variant"}`` (or ``{"title"}``) as one line, as the Firmware Selector shows."""
    if title.get("title"):
        return title["title"]
    return " ".join(part for part in (title.get("vendor"), title.get("model"), title.get("variant")) if part)


@dataclass(frozen=True, slots=True)
class Device:
    """One profile of one target, with every name it is known by."""

    target: str
    id: str
    titles: tuple[str, ...]
    supported_devices: tuple[str, ...]

    @property
    def title(self) -> str:
        return self.titles[0] if self.titles else self.id

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "id": self.id,
            "title": self.title,
            "titles": list(self.titles),
            "supported_devices": list(self.supported_devices),
        }

    def search_words(self) -> set[str]:
        """Words of every title, the profile id, the board names and the target, plus each name written
        without separators (so ``archerc7`` and ``tlwr842n`` match too)."""
        found: set[str] = set()
        for text in (*self.titles, self.id, *self.supported_devices, self.target):
            parts = words_of(text)
            found.update(parts)
            if len(parts) > 1:
                found.add("".join(parts))
                # Neighbouring pairs: "tp"+"link", "archer"+"c7", "wr842n"+"v3".
                found.update(a + b for a, b in pairwise(parts))
        return found


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a swap of neighbours costs one), or ``limit + 1`` once it is
    certain to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            cost = 0 if char_a == char_b else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def allowed_edits(word: str) -> int:
    """Typos tolerated in a query word: none below 4 letters (too many false hits), then 1, then 2."""
    if len(word) < 4:
        return 0
    return 1 if len(word) < 7 else 2


def word_score(query: str, word: str) -> float:
    """How well one query word matches one device word (0 = not at all)."""
    if query == word:
        return EXACT
    if word.startswith(query):
        return PREFIX
    if len(query) >= 2 and query in word:
        return INSIDE
    edits = allowed_edits(query)
    if not edits:
        return 0.0
    # A typo in a word still being typed: compare with the same-length start of the word as well.
    best = edit_distance(query, word, edits)
    if len(word) > len(query):
        best = min(best, edit_distance(query, word[: len(query)], edits))
    if best > edits:
        return 0.0
    return FUZZY * (1 - best / (edits + 1))


class DeviceIndex:
    """The devices of one version, searchable."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self.devices = sorted(devices, key=lambda device: (device.title.lower(), device.target, device.id))
        self._by_word: dict[str, list[int]] = {}
        for position, device in enumerate(self.devices):
            for word in device.search_words():
                self._by_word.setdefault(word, []).append(position)
        self._by_key = {(device.target, device.id): device for device in self.devices}

    def __len__(self) -> int:
        return len(self.devices)

    def get(self, target: str, profile: str) -> Device | None:
        return self._by_key.get((target, profile))

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> list[Device]:
        """Devices matching every word of ``query``, best first; ties in title order."""
        query_words = list(dict.fromkeys(words_of(query)))
        if not query_words:
            return []
        totals: dict[int, float] | None = None
        for query_word in query_words:
            best: dict[int, float] = {}
            for word, positions in self._by_word.items():
                score = word_score(query_word, word)
                if score:
                    for position in positions:
                        if score > best.get(position, 0.0):
                            best[position] = score
            if totals is None:
                totals = best
            else:
                totals = {position: totals[position] + score for position, score in best.items()
                          if position in totals}
            if not totals:
                return []
        assert totals is not None
        ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
        return [self.devices[position] for position, _ in ranked[:limit]]
