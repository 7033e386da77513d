"""Generate the demo download tree: deterministic (same seed → same bytes), signed, laid out like
downloads.openwrt.org. See docs/demo-upstream.md for what it contains.

    info = generate_tree(Path("upstream"), seed=1, base_url="http://127.0.0.1:8001")
    info.versions           # ["23.05.5", "24.10.4", "24.10.5", "25.12.1", "SNAPSHOT"]
    info.targets["24.10.4"] # {"x86/64": "x86_64", "ath79/generic": "mips_24kc", …}
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from asud.demo.devices import TargetDef
from asud.demo.distributions import DISTRIBUTIONS
from asud.demo.metadata import versions_json
from asud.demo.real_scale import real_scale_targets, write_real_release
from asud.demo.signing import demo_key
from asud.demo.tree import Progress, write_release

__all__ = ["TreeInfo", "generate_tree"]

Scale = Literal["demo", "real"]


@dataclass(frozen=True, slots=True)
class TreeInfo:
    """What a generated tree holds, for callers that configure a server or tests against it."""

    root: Path
    #: The two-line usign public key (also at ``root/keys/<fingerprint>.pub`` and in every IB).
    public_key_text: str
    fingerprint: str
    #: Every version, releases then ``SNAPSHOT`` (which lives under ``snapshots/``).
    versions: list[str]
    #: version → {"target/subtarget": arch_packages}
    targets: dict[str, dict[str, str]] = field(default_factory=dict)
    base_url: str = ""
    seed: int = 1

    def version_dir(self, version: str) -> Path:
        """``root/releases/<version>`` or ``root/snapshots``."""
        return self.root / ("snapshots" if version == "SNAPSHOT" else f"releases/{version}")


def _ignore(_: str) -> None:
    pass


def generate_tree(
    dest: Path,
    *,
    seed: int = 1,
    base_url: str = "http://127.0.0.1:8001",
    scale: Scale = "demo",
    with_imagebuilders: bool = True,
    progress: Progress | None = None,
    distribution: str = "openwrt",
) -> TreeInfo:
    """Write the tree into ``dest`` and describe it.

    ``dest`` must be missing, empty, or an earlier generated tree (which is replaced).

    ``base_url`` only appears in the ImageBuilders' repositories files. ``scale="real"`` writes metadata
    at real size (≈100 subtargets, 2,000 profiles, 10,000 packages per architecture) without package files
    or ImageBuilders, for benchmarks. ``progress`` is called with a short text before each step.
    ``distribution`` picks another distribution's tree (``libremesh``: one release, one target, its own key;
    see ``asud.demo.distributions``); the default tree is the same bytes as before it existed.
    """
    spec = DISTRIBUTIONS.get(distribution)
    if spec is None:
        raise ValueError(f"unknown demo distribution {distribution!r} (known: {', '.join(DISTRIBUTIONS)})")
    report = progress or _ignore
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        if not (dest / ".versions.json").is_file():
            raise FileExistsError(f"{dest} is not empty and is not a generated tree; refusing to replace it")
        shutil.rmtree(dest)
    dest.mkdir(parents=True, exist_ok=True)
    key = demo_key(seed, spec.name)
    keys_dir = dest / "keys"
    keys_dir.mkdir()
    public_key_text = key.public_key.to_text()
    (keys_dir / f"{key.fingerprint}.pub").write_text(public_key_text)
    (dest / ".versions.json").write_bytes(
        versions_json(spec.releases, spec.stable_version, spec.oldstable_version)
    )

    targets: dict[str, dict[str, str]] = {}
    for release in spec.releases:
        release_targets: tuple[TargetDef, ...]
        if scale == "real":
            release_targets = real_scale_targets()
            write_real_release(dest, release, release_targets, key, seed=seed, progress=report)
        else:
            release_targets = spec.targets
            write_release(
                dest,
                release,
                release_targets,
                key,
                base_url=base_url,
                seed=seed,
                with_imagebuilders=with_imagebuilders,
                progress=report,
            )
        targets[release.version] = {target.target: target.arch_packages for target in release_targets}
    return TreeInfo(
        root=dest,
        public_key_text=public_key_text,
        fingerprint=key.fingerprint,
        versions=[release.version for release in spec.releases],
        targets=targets,
        base_url=base_url,
        seed=seed,
    )
