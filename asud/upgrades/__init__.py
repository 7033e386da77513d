"""Is there an upgrade for me? Release policy, package changes between releases, the check itself."""
