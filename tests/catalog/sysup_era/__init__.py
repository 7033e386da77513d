"""sysup's catalog tests (SQL catalog, httpx fetcher), kept while sysup runs; deleted together with sysup.

Their asud twins are the modules one level up (tests/catalog/test_*.py).
"""
