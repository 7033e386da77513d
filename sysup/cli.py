"""The ``sysup`` command. Each stage contributes its own sub-commands; this module only wires them."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(help="sysup — an Attended Sysupgrade server for OpenWrt.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """sysup — an Attended Sysupgrade server for OpenWrt."""

#: (module, attribute, name) of each sub-command group; a group whose module is missing is skipped so the
#: CLI keeps working while stages are developed.
_GROUPS = [
    ("sysup.demo_upstream.cli", "app", "demo-upstream"),
]
#: (module, attribute) of single commands registered on the top-level app.
_COMMANDS = [
    ("sysup.catalog.cli", "register"),
    ("sysup.api.cli", "register"),
    ("sysup.client.cli", "register"),
    ("sysup.builds.cli", "register"),
    ("sysup.imagebuilders.cli", "register"),
    ("sysup.demo_upstream.demo", "register"),
]

for module_name, attribute, name in _GROUPS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        continue
    app.add_typer(getattr(module, attribute), name=name)

for module_name, attribute in _COMMANDS:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        continue
    getattr(module, attribute)(app)


@app.command()
def version() -> None:
    """Print the sysup version."""
    from sysup import __version__

    typer.echo(__version__)


if __name__ == "__main__":
    app()
