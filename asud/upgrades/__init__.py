"""Is there an upgrade for me? Release policy, package changes between releases, the check itself.

``policy`` picks the version to offer, ``package_changes`` carries a package list across releases,
``check`` compares a device with the catalog (``check_upgrade`` → Deferred), ``request`` reads and hashes
what clients send (2017 and v1 bodies), ``store`` keeps the answers in Redis so they can be fetched again by
hash or by the 12/15-character prefixes 2017 clients kept.
"""
