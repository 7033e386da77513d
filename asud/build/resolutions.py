"""Package selections already resolved against one catalog, answered again without a thread.

Checking a selection's names and resolving its dependency closure (``asud.build.validate``) is a pure
function of the package index and the package lists; the index is a pure function of the catalog and
(distro, version, target), because feed groups are keyed by their signed content (``asud.catalog.feeds``)
and a ``Catalog`` never changes (a refresh that changes something makes a new one). So the outcome of a
resolution — the predicted manifest and package set, or the refusal — can be kept per catalog and given
again, on the reactor, to the next request with the same selection: clients that retry a refused
selection (auc, scripts, the benchmark's 20 clients) cost a dictionary lookup instead of a thread hop
and a resolution.

Each catalog gets its own :class:`ResolutionCache` (:func:`resolutions_of`), which lives exactly as long
as the catalog: after a refresh the new catalog starts empty, and the old one's outcomes go with it.
A cache is bounded twice: by entries, and by an estimate of the memory its keys and outcomes hold
(package lists are at most ``max_packages`` names of at most 128 characters each).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from asud.errors import AsudError

__all__ = ["ResolutionCache", "ResolutionKey", "Resolved", "resolutions_of"]

#: ``(distro, version, target, package manager, default packages, device packages, build packages)``:
#: everything a resolution reads besides the catalog. Package order is kept: it decides which provider
#: of a virtual package is installed.
ResolutionKey = tuple[str, str, str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]

#: Entries per catalog; a few hundred distinct selections are retried at any time.
DEFAULT_ENTRIES = 1024
#: Estimated bytes per catalog (keys and outcomes): a few MB.
DEFAULT_WEIGHT = 8 * 1024 * 1024
#: What one ``str`` costs besides its characters (CPython object header, pointer to it).
_PER_STRING = 64


@attrs.frozen
class Resolved:
    """What a resolution gave: the predicted manifest (``None`` for apk) and the image key's package set;
    or, for an impossible selection, the refusal (``UnknownPackages``, ``PackageConflict``)."""

    manifest: Mapping[str, str] | None = None
    package_set: Mapping[str, str] | tuple[str, ...] = ()
    refusal: AsudError | None = None

    @classmethod
    def of(cls, outcome: tuple[dict[str, str] | None, dict[str, str] | list[str]] | AsudError) -> Resolved:
        """Keep ``outcome`` (``_resolve_packages``'s result or the error it raised) without the error's
        traceback, which would pin the resolving thread's frames."""
        if isinstance(outcome, AsudError):
            return cls(refusal=_fresh(outcome))
        manifest, package_set = outcome
        kept = None if manifest is None else dict(manifest)
        if package_set is manifest and kept is not None:  # complete opkg resolution: the key names it
            return cls(manifest=kept, package_set=kept)
        return cls(
            manifest=kept,
            package_set=dict(package_set) if isinstance(package_set, Mapping) else tuple(package_set),
        )

    def result(self) -> tuple[dict[str, str] | None, dict[str, str] | list[str]]:
        """A copy of the result, as ``_resolve_packages`` returns it; raises a fresh copy of the refusal
        (same type, status and detail)."""
        if self.refusal is not None:
            raise _fresh(self.refusal)
        manifest = None if self.manifest is None else dict(self.manifest)
        package_set = self.package_set
        return manifest, dict(package_set) if isinstance(package_set, Mapping) else list(package_set)

    def weight(self) -> int:
        """Estimated bytes held."""
        if self.refusal is not None:
            return _strings_weight([self.refusal.detail, *map(str, self.refusal.args)]) + 4 * _PER_STRING
        strings: list[str] = []
        if self.manifest is not None:
            strings += [*self.manifest.keys(), *self.manifest.values()]
        if self.package_set is not self.manifest:
            strings += list(self.package_set)
        return _strings_weight(strings)


def _fresh(error: AsudError) -> AsudError:
    """A copy of ``error`` with no traceback: same class, ``args`` and attributes (``detail``,
    ``names``, ``suggestions``), made without calling ``__init__`` (whose signature varies)."""
    copy: AsudError = type(error).__new__(type(error), *error.args)
    copy.__dict__.update(error.__dict__)
    return copy


def _strings_weight(strings: Iterable[str]) -> int:
    return sum(len(text) + _PER_STRING for text in strings)


def key_weight(key: ResolutionKey) -> int:
    """Estimated bytes a key holds (its package lists dominate)."""
    return _strings_weight(key[:4]) + sum(_strings_weight(names) for names in key[4:])


class ResolutionCache:
    """A bounded LRU of resolution outcomes for one catalog; used on the reactor thread only.

    ``hits`` and ``misses`` count lookups (``/metrics`` material, and what tests observe).
    """

    def __init__(self, entries: int = DEFAULT_ENTRIES, weight: int = DEFAULT_WEIGHT) -> None:
        self.max_entries = entries
        self.max_weight = weight
        self.hits = 0
        self.misses = 0
        self.weight = 0
        self._entries: OrderedDict[ResolutionKey, tuple[Resolved, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: ResolutionKey) -> Resolved | None:
        """The outcome kept for ``key`` (now the most recently used), or ``None``."""
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return found[0]

    def put(self, key: ResolutionKey, outcome: Resolved) -> None:
        """Keep ``outcome``, dropping the least recently used entries beyond either bound. An entry
        heavier than an eighth of the weight bound is not kept: it would push out many others."""
        weight = key_weight(key) + outcome.weight()
        if weight > self.max_weight // 8:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.weight -= previous[1]
        self._entries[key] = (outcome, weight)
        self.weight += weight
        while len(self._entries) > self.max_entries or self.weight > self.max_weight:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.weight -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.weight = 0


#: One cache per catalog object, gone when the catalog is (a refresh that changed something swaps in a
#: new catalog; one that changed nothing keeps the object, and so its outcomes).
_BY_CATALOG: weakref.WeakKeyDictionary[Any, ResolutionCache] = weakref.WeakKeyDictionary()


def resolutions_of(catalog: Any) -> ResolutionCache | None:
    """The resolution cache of ``catalog``; ``None`` for an object that cannot be weakly referenced
    (then nothing is cached)."""
    try:
        cache = _BY_CATALOG.get(catalog)
        if cache is None:
            cache = _BY_CATALOG[catalog] = ResolutionCache()
    except TypeError:
        return None
    return cache
