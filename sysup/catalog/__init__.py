"""The catalog: what the server knows about each distribution, kept fresh from its download server.

* ``sync`` (``sysup sync``): walk the download server with conditional, signature-checked requests.
* ``queries.Catalog``: the read API the HTTP API, request validation and the builder use.
* ``resolver``: predict the ImageBuilder's package selection (``resolve``, ``check_names``).
* ``models``: the tables; migrations live in ``sysup/database/migrations``.
"""
