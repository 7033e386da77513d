"""Cold build: POST→200 for an ImageBuilder not yet in the cache, split per step.

The split comes from the build record's ``stage`` field in the daemon's Redis, read at every poll: the
build pool writes each stage as it starts (``asud.build.pool``), so the time between two stage changes is
the time of the step in between (a step shorter than one poll is not seen and counts into the one before).
"""

from __future__ import annotations

from bench.client import Http, post_and_wait, request_body
from bench.context import PROFILE, TARGET, VERSION, Context
from bench.machine import loadavg
from bench.results import Figure

#: What each stage of ``asud.build.stages.BuildStage`` covers, as the pipeline runs them.
STEP_NAMES = {
    "init": "queue wait and start",
    "download_imagebuilder": "ImageBuilder download + sha256/signature verify",
    "unpack_imagebuilder": "unpack + workspace + verified package indexes",
    "validate_revision": "`make info` (revision check)",
    "validate_manifest": "`make manifest` + package prefetch",
    "calculate_packages_hash": "packages hash",
    "building_image": "`make image` + store",
    "signing_images": "signing",
}


def run(context: Context) -> Figure:
    figure = Figure(
        "cold build",
        "one POST of a selection whose ImageBuilder is not cached yet (fresh data directory), polled every "
        "20 ms until 200; steps are the build record's stages (read from the daemon's Redis at each poll).",
        "report, with the split per step",
    )
    figure.details.append(f"load average before: {loadavg()}")
    body = request_body(VERSION, TARGET, PROFILE, ["luci"], "bench/cold")
    with context.world.redis(context.daemon) as redis, Http(context.daemon.url) as client:
        waited = post_and_wait(client, body, watch=redis.stage)
    if waited.status != 200:
        figure.value = f"build failed ({waited.status}): {str(waited.body.get('detail'))[:200]}"
        figure.met = False
        return figure
    context.finished_body = body
    context.finished_hash = waited.body["request_hash"]
    figure.value = f"{waited.seconds:.2f} s POST→200"
    splits = [f"POST → first stage seen {waited.stages[0][0]:.2f} s"] if waited.stages else []
    for (at, stage), (next_at, _) in zip(waited.stages, waited.stages[1:], strict=False):
        splits.append(f"{STEP_NAMES.get(stage, stage)} {next_at - at:.2f} s")
    figure.details.append(f"{VERSION} {TARGET} {PROFILE} + luci, sandbox {context.world.sandbox}")
    figure.details.append("split: " + "; ".join(splits))
    figure.details.append(f"load average after: {loadavg()}")
    return figure
