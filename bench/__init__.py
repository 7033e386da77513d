"""The asud benchmark suite: ``python -m bench`` (``make bench``) measures every figure of the performance
targets (issue 15) against its ceiling in the same run, on 127.0.0.1, and writes ``bench/out/results.md``
(ignored); ``bench/results.md`` is the committed reference, updated by hand.

One module per figure; the shared parts are the machine description (``machine``), the load generators
(``load``), the daemon under test (``daemon``, ``world``), the ceilings (``ceilings``, ``bare``) and the
report (``results``). The daemon runs as it runs in production: ``twist asud --config FILE``.
"""
