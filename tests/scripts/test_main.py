"""The ``asud`` command line: every sub-command answers ``--help`` with its options, usage errors exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.python import usage

from asud import __version__
from asud.scripts.main import AsudOptions
from tests.scripts.support import asud

#: Each sub-command and options its help must list (every one has --config and --help).
SUB_COMMANDS = {
    "sync": ["--distro"],
    "purge": [],
    "fetch-imagebuilder": ["--distro"],
    "request": [
        "--server",
        "--version",
        "--target",
        "--profile",
        "--packages",
        "--defaults",
        "--rootfs-size",
        "--version-code",
        "--out",
        "--json",
        "--poll-interval",
        "--timeout",
    ],
    "demo": ["--dir", "--port", "--upstream-port", "--host"],
    "demo-upstream": [],
    "demo-upstream build": ["--seed", "--scale", "--base-url", "--no-imagebuilders"],
    "demo-upstream serve": ["--listen"],
    "version": [],
}


def test_top_level_help_lists_every_command() -> None:
    result = asud("--help")
    assert result.returncode == 0, result.stderr
    for name in ("sync", "purge", "fetch-imagebuilder", "request", "demo", "demo-upstream", "version"):
        assert f"    {name} " in result.stdout
    assert "twist asud --config FILE" in result.stdout


@pytest.mark.parametrize("command", sorted(SUB_COMMANDS))
def test_each_command_has_help_and_config(command: str) -> None:
    options = AsudOptions()
    with pytest.raises(SystemExit) as exited:
        options.parseOptions([*command.split(), "--help"])
    assert exited.value.code == 0
    text = str(options)  # the usage of the innermost command, as --help printed it
    for option in ["--config", "--help", *SUB_COMMANDS[command]]:
        assert f"{option}=" in text or f"{option} " in text, (command, option)


def test_help_as_a_real_process() -> None:
    result = asud("demo-upstream", "serve", "--help")
    assert result.returncode == 0
    assert "Usage: " in result.stdout and "demo-upstream" in result.stdout and "--listen=" in result.stdout


def test_version() -> None:
    assert asud("version").stdout.strip() == __version__
    assert asud("--version").stdout.strip() == __version__
    assert asud("sync", "--version").stdout.strip() == __version__


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "a command is needed"),
        (["frobnicate"], "Unknown command: frobnicate"),
        (["demo-upstream"], "a command is needed: build, serve"),
        (["purge"], "Wrong number of arguments"),
        (["sync", "--no-such-option"], "option --no-such-option not recognized"),
        (["demo-upstream", "build", "x", "--scale", "huge"], "--scale must be 'demo' or 'real'"),
        (["demo-upstream", "serve", "/no/such/dir"], "/no/such/dir is not a directory"),
        (["demo", "--port", "eighty"], "invalid literal"),
    ],
)
def test_usage_errors_exit_1_with_the_reason(args: list[str], message: str) -> None:
    result = asud(*args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Usage: asud" in result.stderr


def test_options_may_follow_the_arguments() -> None:
    options = AsudOptions()
    options.parseOptions(
        ["demo-upstream", "build", "tree", "--seed", "7", "--no-imagebuilders", "-c", "x.toml"]
    )
    build = options.subOptions.subOptions
    assert (build["directory"], build["seed"], build["no-imagebuilders"], build["config"]) == (
        Path("tree"), 7, True, "x.toml")  # fmt: skip
    with pytest.raises(usage.UsageError):
        AsudOptions().parseOptions(["demo-upstream", "build", "a", "b"])


def test_a_bad_setting_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "asud.toml"
    config.write_text('[build]\nworkers = "several"\n')
    result = asud("sync", "--config", str(config))
    assert result.returncode == 1
    assert "bad setting build.workers: expected a whole number" in result.stderr
    missing = asud("purge", "abc", "--config", str(tmp_path / "missing.toml"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr
