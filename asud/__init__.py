"""asud — an Attended Sysupgrade daemon for OpenWrt, on Twisted."""

__version__ = "0.2.0"
