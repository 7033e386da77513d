"""The synthetic signed OpenWrt download server with miniature ImageBuilders (offline demo, tests)."""
