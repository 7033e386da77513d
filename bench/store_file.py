"""GET and HEAD of a 30 MB image from ``/store`` against the same file from a bare
``twisted.web.static.File``.

The demo ImageBuilders make images of a few kilobytes, so the finished build's directory in the files
store gets one more file of random bytes of the size the issue names, stored the way the build pipeline
stores its images (``asud.store.files.Store.import_files``: content-addressed, hard-linked into the
build's directory). The daemon serves it as it serves every image; the ceiling serves the same directory.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from asud.store.files import Store
from bench.ceilings import Compared, alternate, bare_file
from bench.client import Http
from bench.context import Context
from bench.load import WrkRun, head_load, wrk
from bench.profile import profiled
from bench.results import Figure

#: Target of issue 15: this share of ``twisted.web.static.File`` bare, for GET and for HEAD.
MIN_RATIO = 0.80
IMAGE_NAME = "openwrt-24.10.5-ath79-generic-bench-30mb-squashfs-sysupgrade.bin"


def _add_image(store_dir: Path, bin_dir: str, megabytes: int, scratch: Path) -> tuple[str, str]:
    """A random image of ``megabytes`` MB in ``bin_dir``; its name and sha256."""
    source = scratch / IMAGE_NAME
    with source.open("wb") as output:
        for _ in range(megabytes):
            output.write(os.urandom(1_000_000))
    digests = Store(store_dir).import_files(bin_dir, [source])
    source.unlink()
    return IMAGE_NAME, digests[IMAGE_NAME]


def _get_verdict(compared: Compared) -> tuple[str, str, bool]:
    # Bytes per second, not answers: with 32 connections and a second or so per 30 MB answer, a run of a
    # few seconds completes answers in rounds of 32, and answers per second would jump by a third between
    # rounds; wrk's Transfer/sec counts every byte received, answers finished or not.
    ok = compared.bytes_ratio >= MIN_RATIO and compared.errors == 0
    return (
        f"GET {compared.ours_bytes / 1e6:,.0f} MB/s = {compared.bytes_ratio:.2f} x bare",
        f"GET File {compared.bare_bytes / 1e6:,.0f} MB/s",
        ok,
    )


def _head_verdict(compared: Compared) -> tuple[str, str, bool]:
    ok = compared.ratio >= MIN_RATIO and compared.errors == 0
    return (
        f"HEAD {compared.ours_rps:,.0f} req/s = {compared.ratio:.2f} x bare",
        f"HEAD File {compared.bare_rps:,.0f} req/s",
        ok,
    )


def run(context: Context) -> Figure:
    mode = context.mode
    size = mode.store_mb
    figure = Figure(
        f"HEAD/GET of a {size} MB image from /store",
        f"a {size} MB image added to the finished build's directory in the files store (as the pipeline "
        f"stores images); GET with wrk -t{mode.wrk_threads} -c{mode.wrk_connections}, HEAD with the "
        f"bench's own asyncio client on {mode.wrk_connections} keep-alive connections (wrk 4.1 cannot "
        f"send HEAD: it waits for a body), {mode.store_seconds:.0f} s per run, {mode.wrk_runs} runs each "
        "alternating with the ceiling: `twisted.web.static.File` of the same directory, bare, in its own "
        "process; medians and their ratios (GET: bytes per second as wrk counts them; HEAD: answers "
        "per second).",
        f"≥ {MIN_RATIO:.2f} x static.File, GET and HEAD",
    )
    if context.finished_hash is None:
        figure.value = "skipped: no finished build"
        figure.met = False
        return figure
    with Http(context.daemon.url) as client:
        bin_dir = client.get(f"/api/v1/build/{context.finished_hash}").json()["bin_dir"]
    store_dir = context.world.data_dir / "store"
    name, sha256 = _add_image(store_dir, bin_dir, size, context.world.work)
    path = f"/store/{bin_dir}/{name}"
    with Http(context.daemon.url, timeout=60) as client:
        answer = client.get(path)
    if answer.status != 200 or hashlib.sha256(answer.body).hexdigest() != sha256:
        raise RuntimeError(f"GET {path} answered {answer.status} with other bytes")
    figure.details.append(f"image: {len(answer.body):,} bytes, sha256 {sha256[:16]}…")

    def get(url: str) -> WrkRun:
        return wrk(
            url, seconds=mode.store_seconds, connections=mode.wrk_connections, threads=mode.wrk_threads
        )

    def head(url: str) -> WrkRun:
        return head_load(url, seconds=mode.store_seconds, connections=mode.wrk_connections)

    with bare_file(store_dir / bin_dir, context.world.logs / "bare-file.log") as bare:
        bare_path = f"{bare.url}/{name}"
        with Http(bare.url, timeout=60) as client:
            assert client.get(f"/{name}").body == answer.body
        gets = alternate(
            mode.wrk_runs,
            lambda: get(context.daemon.url + path),
            lambda: get(bare_path),
            figure.details,
            "GET",
        )
        heads = alternate(
            mode.wrk_runs,
            lambda: head(context.daemon.url + path),
            lambda: head(bare_path),
            figure.details,
            "HEAD",
        )
    get_value, get_ceiling, get_ok = _get_verdict(gets)
    head_value, head_ceiling, head_ok = _head_verdict(heads)
    figure.value = f"{get_value}; {head_value}"
    figure.ceiling = f"{get_ceiling}; {head_ceiling}"
    figure.met = get_ok and head_ok
    if context.profile:
        figure.details.append("HEAD, under the bench's HEAD load:")
        figure.details += profiled(
            context.daemon.pid, lambda: head(context.daemon.url + path), mode.store_seconds
        )
    for label, compared in (("GET", gets), ("HEAD", heads)):
        if compared.errors:
            figure.details.append(
                f"{label}: {compared.errors} bad responses or socket errors from the daemon"
            )
    return figure
