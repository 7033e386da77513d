"""The HTTP API of sysup: v1 build routes, ``/json/v1`` documents, ``/store`` downloads, CORS.

Public entry: :func:`sysup.api.app.create_app`. This package file imports nothing, so the ``sysup`` CLI
can load ``sysup.api.cli`` cheaply.
"""
