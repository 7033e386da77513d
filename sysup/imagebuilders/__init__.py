"""The imagebuilders stage: fetch, verify and cache ImageBuilders; verified package feeds; sandboxed ``make``.

Modules (one job each): ``cache`` (ImageBuilder cache, LRU), ``unpack`` (safe archive extraction),
``signed_sums`` (verified ``sha256sums`` listings), ``workspace`` (per-build hard-linked copy),
``package_cache`` (verified indexes and package files, local feeds), ``keys`` (workspace signing keys),
``sandbox`` + ``process`` (bwrap / none, timeouts, output caps), ``runner`` (``make`` targets → results or
``asud.errors``), ``locks`` (flock).

The intended sequence for one build (the worker in ``sysup.builds`` owns the real one)::

    cache = ImageBuilderCache(settings.ib_cache_dir, fetcher, settings.ib_cache_max_bytes)
    packages = PackageCache(settings.package_cache_dir, fetcher)
    sandbox = find_sandbox(settings.sandbox)                      # SandboxError if bwrap is missing

    with cache.lease(upstream_url, "releases/24.10.4", "ath79/generic", distro_keys) as ib_dir:
        workspace = make_workspace(ib_dir, settings.workspace_dir)  # ensure → workspace
    with workspace:
        install_keys(workspace.path / "keys", request.repository_keys)
        repos = add_repositories(read_repositories(workspace.path), request.repositories,
                                 mode=request.repositories_mode)
        keys = read_usign_keys(workspace.path / "keys") + distro_keys
        feeds = packages.prefetch_indexes(repos, keys)                     # prefetch indexes
        packages.rewrite_repositories(workspace.path, repos, feeds)      # rewrite repositories
        runner = ImageBuilderRunner(workspace.path, sandbox, settings.build_timeout, output_limit)
        info = runner.info()                                              # check info.revision
        manifest = runner.manifest(profile, request_packages)
        fetched = packages.prefetch_packages(feeds, manifest)             # prefetch packages
        packages.rewrite_repositories(workspace.path, repos, feeds, fetched)
        result = runner.image(profile, request_packages, bin_dir=bin_dir, files_dir=files_dir,
                              extra_image_name=extra, rootfs_partsize=size, rootfs_filesystem=fs,
                              supports_rootfs_filesystem=runner.supports_rootfs_filesystem())

Note for real opkg ImageBuilders: their ``make manifest`` installs packages for real, so with no network
it needs the package files already; call ``prefetch_packages`` with the catalog's predicted manifest (and
``rewrite_repositories``) before ``make manifest`` there. The demo ImageBuilder resolves the manifest from
the indexes alone.
"""

from sysup.imagebuilders.cache import ImageBuilderCache
from sysup.imagebuilders.keys import install_keys, read_usign_keys
from sysup.imagebuilders.package_cache import PackageCache, add_repositories, read_repositories
from sysup.imagebuilders.runner import ImageBuilderRunner, ImageResult, ImpossiblePackageSelection
from sysup.imagebuilders.sandbox import BwrapSandbox, NoSandbox, RunResult, Sandbox, find_sandbox
from sysup.imagebuilders.workspace import Workspace, make_workspace

__all__ = [
    "BwrapSandbox",
    "ImageBuilderCache",
    "ImageBuilderRunner",
    "ImageResult",
    "ImpossiblePackageSelection",
    "NoSandbox",
    "PackageCache",
    "RunResult",
    "Sandbox",
    "Workspace",
    "add_repositories",
    "find_sandbox",
    "install_keys",
    "make_workspace",
    "read_repositories",
    "read_usign_keys",
]
