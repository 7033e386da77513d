"""The sysup benchmark suite: ``python -m bench`` (``make bench``) measures every figure of the
performance targets on 127.0.0.1 and writes ``bench/out/results.md`` (ignored); ``bench/results.md`` is
the committed reference, updated by hand.

One module per figure; the shared parts are the machine description (``machine``), the load generators
(``load``), the processes under test (``processes``, ``world``) and the report (``results``).
"""
