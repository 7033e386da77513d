"""sysup — an Attended Sysupgrade server for OpenWrt."""

__version__ = "0.1.0"
