"""Package feeds, loaded on first use: fetched, verified and parsed in a thread, kept in a bounded LRU.

A ``FeedGroup`` (a target's ``packages``+``kmods``, or an architecture's five feeds) is loaded as one
unit: every feed of it verifies, or the group fails with the URL of the one that did not (nothing from
it is used). Concurrent first uses share one load. Groups and the ``PackageIndex``es built from them are
cached by content key, so a catalog refresh that changes nothing keeps them warm.

A group that fails verification is remembered as failed until upstream changes it (its key changes);
a network failure is not remembered, so the next use tries again.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import attrs
from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure

from asud.catalog.data import FeedGroup, FeedSource
from asud.catalog.resolver import IMAGEBUILDER_PACKAGES, PackageIndex
from asud.catalog.trust import verified_apk_index, verified_opkg_index
from asud.errors import SignatureError
from asud.upstream.errors import UpstreamFormatError, UpstreamNotFound
from asud.upstream.records import PackageManager, PackageRecord

__all__ = ["FEED_ORDER", "FeedCache", "LoadedGroup", "flat_versions", "load_group"]

log = Logger()

#: Feed order of a build, as the ImageBuilder's ``repositories.conf`` lists them (it decides which
#: provider of a virtual package comes first).
FEED_ORDER: tuple[tuple[str, str], ...] = (
    ("target", "packages"),
    ("arch", "base"),
    ("target", "kmods"),
    ("arch", "packages"),
    ("arch", "luci"),
    ("arch", "routing"),
    ("arch", "telephony"),
)

#: ``get(url)``: the body at ``url`` (through the on-disk cache); ``UpstreamNotFound`` when absent.
Getter = Callable[[str], "Deferred[bytes]"]

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


@attrs.frozen
class LoadedGroup:
    """The verified records of a group's feeds that exist upstream, by feed name."""

    group: FeedGroup
    feeds: Mapping[str, tuple[PackageRecord, ...]] = attrs.field(repr=False)

    @property
    def packages(self) -> int:
        return sum(len(records) for records in self.feeds.values())


def _deterministic(failure: Failure) -> bool:
    """A failure that the same upstream bytes would give again (worth remembering)."""
    return failure.check(SignatureError, UpstreamFormatError, ValueError) is not None


class _AsyncLRU(Generic[_K, _V]):
    """An LRU of values produced by Deferreds, one producer per key at a time.

    Each caller gets its own Deferred, so one caller cancelling (a client gone) stops nobody else.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[_K, _V | Failure] = OrderedDict()
        self._waiting: dict[_K, list[Deferred[_V]]] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def peek(self, key: _K) -> _V | None:
        value = self._values.get(key)
        return None if isinstance(value, Failure) or value is None else value

    def get(self, key: _K, produce: Callable[[], Deferred[_V]]) -> Deferred[_V]:
        if key in self._values:
            self._values.move_to_end(key)
            value = self._values[key]
            return _fired(value)
        waiter: Deferred[_V] = Deferred(lambda d: self._forget(key, d))
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.append(waiter)
            return waiter
        self._waiting[key] = [waiter]
        produce().addBoth(self._produced, key)
        return waiter

    def _forget(self, key: _K, waiter: Deferred[_V]) -> None:
        waiting = self._waiting.get(key)
        if waiting is not None and waiter in waiting:
            waiting.remove(waiter)

    def _produced(self, result: _V | Failure, key: _K) -> None:
        if not isinstance(result, Failure) or _deterministic(result):
            self._values[key] = result
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        for waiter in self._waiting.pop(key, []):
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(result)

    def clear(self) -> None:
        self._values.clear()


def _fired(value: Any) -> Deferred[Any]:
    if isinstance(value, Failure):
        d: Deferred[Any] = Deferred()
        d.errback(value)
        return d
    return succeed(value)


@attrs.frozen
class _Fetched:
    """One feed's bytes as upstream sent them, not verified yet."""

    feed: str
    url: str
    index: bytes
    signature: bytes | None = None
    expected_sha256: str | None = None


async def _fetch_feed(source: FeedSource, group: FeedGroup, get: Getter) -> _Fetched | None:
    """One feed's index (and its signature), or ``None`` when the feed does not exist upstream."""
    if group.manager == "apk":
        url = source.url + "index.json"
        try:
            index = await get(url)
        except UpstreamNotFound:
            return None
        return _Fetched(source.feed, url, index, expected_sha256=(group.sums or {}).get(source.sums_prefix
                                                                                        + "index.json"))
    url = source.url + "Packages"
    try:
        index = await get(url)
    except UpstreamNotFound:
        return None
    try:
        signature: bytes | None = await get(url + ".sig")
    except UpstreamNotFound:
        signature = None
    return _Fetched(source.feed, url, index, signature)


def _verified_feeds(group: FeedGroup, fetched: list[_Fetched | None]) -> LoadedGroup:
    """Verify and parse every fetched feed of ``group``, in order (CPU work: in a thread); the first that
    fails verification fails the group."""
    feeds: dict[str, tuple[PackageRecord, ...]] = {}
    for item in fetched:
        if item is None:
            continue
        if group.manager == "apk":
            records = verified_apk_index(item.url, item.index, item.expected_sha256)
        else:
            records = verified_opkg_index(item.url, item.index, item.signature, group.keys)
        feeds[item.feed] = tuple(records)
    return LoadedGroup(group, feeds)


def load_group(group: FeedGroup, get: Getter) -> Deferred[LoadedGroup]:
    """Fetch every feed of ``group`` at once, then verify and parse them one after the other in one thread.

    Downloading first and parsing after keeps the reactor, which receives the bodies, from competing for
    the GIL with parsing threads: a parse of the 10,000-package feed running beside the download of
    another slowed that download several times over (the first validation on a cold feed waits for
    both)."""
    fetches = [Deferred.fromCoroutine(_fetch_feed(source, group, get)) for source in group.sources]
    return _all_or_first_failure(fetches).addCallback(
        lambda fetched: deferToThread(_verified_feeds, group, fetched)
    )


def _all_or_first_failure(loads: list[Deferred[Any]]) -> Deferred[list[Any]]:
    """The results of ``loads`` once every one has finished — none is left running behind a failure —
    or the first failure in list order."""

    def collect(results: list[tuple[bool, Any]]) -> list[Any] | Failure:
        for ok, result in results:
            if not ok:
                return result  # type: ignore[no-any-return]
        return [result for _, result in results]

    return DeferredList(loads, consumeErrors=True).addCallback(collect)


def _ordered(groups: list[LoadedGroup]) -> list[PackageRecord]:
    """Records of ``groups`` in build order (``FEED_ORDER``; unknown feeds after, by name)."""
    order = {entry: position for position, entry in enumerate(FEED_ORDER)}
    feeds = [(group.group.scope, feed, records) for group in groups for feed, records in group.feeds.items()]
    feeds.sort(key=lambda item: (order.get((item[0], item[1]), len(order)), item[1]))
    return [record for _, _, records in feeds for record in records]


def build_index(groups: list[LoadedGroup], manager: PackageManager) -> PackageIndex:
    """Everything a build can install, plus the ImageBuilder's own ``kernel``/``libc`` with unknown
    versions where no index lists them (CPU work: in a thread)."""
    records = _ordered(groups)
    names = {record.name for record in records}
    records += [PackageRecord(name=name, version="") for name in IMAGEBUILDER_PACKAGES if name not in names]
    return PackageIndex(records, manager)


def flat_versions(groups: list[LoadedGroup]) -> dict[str, str]:
    """ABI-free name → version; the first feed in build order wins a name listed twice."""
    flat: dict[str, str] = {}
    for record in _ordered(groups):
        flat.setdefault(record.stripped_name, record.version)
    return dict(sorted(flat.items()))


class FeedCache:
    """Loaded groups and built indexes, ``entries`` of each, shared by catalog generations."""

    def __init__(self, get: Getter, entries: int) -> None:
        self._get = get
        self._groups: _AsyncLRU[tuple[str, ...], LoadedGroup] = _AsyncLRU(entries)
        self._indexes: _AsyncLRU[tuple[object, ...], PackageIndex] = _AsyncLRU(entries)

    def group(self, group: FeedGroup, get: Getter | None = None) -> Deferred[LoadedGroup]:
        """The loaded ``group``: from the cache, or fetched with ``get`` (default: the cache's own)."""

        def produce() -> Deferred[LoadedGroup]:
            loading = load_group(group, get or self._get)
            loading.addErrback(self._logged, group)
            return loading

        return self._groups.get(group.key, produce)

    def _logged(self, failure: Failure, group: FeedGroup) -> Failure:
        log.warn("catalog: package feeds of {distro} {version} {name} ({url}) not used: {reason}",
                 distro=group.key[0], version=group.key[1], name=group.name, url=group.url,
                 reason=getattr(failure.value, "detail", failure.getErrorMessage()))
        return failure

    def index(self, groups: list[FeedGroup], manager: PackageManager) -> Deferred[PackageIndex]:
        """The ``PackageIndex`` over ``groups`` (built in a thread, then cached)."""
        key = (tuple(group.key for group in groups), manager)

        def produce() -> Deferred[PackageIndex]:
            loads = _all_or_first_failure([self.group(group) for group in groups])
            return loads.addCallback(lambda loaded: deferToThread(build_index, loaded, manager))

        return self._indexes.get(key, produce)

    def cached_index(self, groups: list[FeedGroup], manager: PackageManager) -> PackageIndex | None:
        return self._indexes.peek((tuple(group.key for group in groups), manager))

    def clear(self) -> None:
        """Forget every group and index (tests and admin tools)."""
        self._groups.clear()
        self._indexes.clear()

