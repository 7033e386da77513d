"""The HTTP surfaces, one Klein app each, composed into one resource.

``root.make_resource(app)`` is the daemon's resource: the cross-route rules (fast path, ``//path``, CORS,
``?status_in_body=1``, body limit) and a path-prefix table of surfaces (``root.MOUNTS``). ``state.AsudApp``
is what every surface is given; ``responses`` and ``errors`` are the JSON answers and the error mapping they
share; ``site.make_site`` is the ``Site`` to listen with. Surfaces: ``build`` (v1 build API, rendered by
``build_answers``, hot answers in ``fastpath``), ``meta`` (revision, queue length), ``documents``
(``/json/v1`` from ``json_documents``, and the redirects), ``store`` (downloads through ``files``), ``docs``
(``/docs``, ``/openapi.json`` from ``openapi``), the 2017 API (``legacy``, ``legacy_catalog``), upgrade
checks (``upgrades``), statistics (``stats``, ``metrics``) and the web pages (``web``).
"""
