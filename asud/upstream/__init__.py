"""Everything read from a download server (downloads.openwrt.org, a mirror, or the demo tree).

One module per job; import from the module itself, so that reading a record does not pull in
treq or PyNaCl:

* ``fetch``          HTTP/``file://`` fetching (treq) with conditional requests, retries, verified downloads
* ``usign``          usign/signify Ed25519 keys and signatures
* ``version_order``  opkg and apk version rules, OpenWrt release ordering
* ``versions_json``, ``targets_json``, ``profiles_json``, ``index_json``, ``packages_index``,
  ``manifest``, ``make_info``, ``sha256sums``, ``repositories``, ``feeds_conf``  one parser per format
* ``records``        the plain records the parsers return; ``errors`` the errors they raise
"""
