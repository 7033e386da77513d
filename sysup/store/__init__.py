"""Artifacts on disk, addressed by hash; retention and size limits (see DESIGN.md decision 8)."""

from sysup.store.store import Store, is_private_bin_dir, is_valid_bin_dir, is_valid_name

__all__ = ["Store", "is_private_bin_dir", "is_valid_bin_dir", "is_valid_name"]
