"""The pages people use: the firmware builder (``/``), build progress (``/build/{hash}``), statistics
(``/stats``, charts drawn as SVG on the server), about (``/about``).

Public entry: :func:`sysup.web.routes.install_web` (called by ``sysup.api.app.create_app``). The pages
request and poll builds through the public v1 API like the Firmware Selector; ``/web/api/*`` only answers
what the pages need to look up (devices, packages) and checks a selection without queueing it.
"""
