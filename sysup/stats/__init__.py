"""Statistics: every build request and build outcome as raw events, rolled into daily aggregates.

* ``models``   the tables (events kept for ``stats_retention``, aggregates forever)
* ``recorder`` writing events (the API's POST handlers) and collecting build outcomes from ``builds``
* ``queries``  what the stats routes, ``/metrics`` and the web stats page read
"""

from sysup.stats.recorder import StatsRecorder, recorder_for

__all__ = ["StatsRecorder", "recorder_for"]
