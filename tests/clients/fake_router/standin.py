"""Stand-ins for the OpenWrt tools the router client calls, one program dispatched on its name.

Installed into the fake router root as ``/bin/ubus``, ``/sbin/uci``, ``/usr/bin/jsonfilter``,
``/bin/uclient-fetch``, ``/sbin/sysupgrade``, ``/bin/opkg`` and, for the fallback, ``/bin/wget``
(symlinks to this file). Each appends
``{"tool", "argv", ...}`` to ``/recorded/calls.jsonl`` and prints what the real tool prints:

* ``ubus call system board`` and ``opkg list-installed``: the recorded outputs under ``/recorded``.
* ``uci get``: the value from ``/etc/config/<package>`` (libuci's answer and its "Entry not found").
* ``jsonfilter``: the subset of jsonpath/main.c the client uses (``-i``/``-s``, ``-e`` with ``$``/``@``,
  ``.label``, ``["key"]``, ``[N]``, ``[*]``, and ``VAR=`` exports), with json-c's spaced output.
* ``uclient-fetch``: real HTTP with uclient-fetch's behaviour: POST data is sent as a form, only
  200/204 bodies are written, anything else prints ``HTTP error N`` and exits 8.
* ``wget``: BusyBox wget (networking/wget.c): POST data sent as a form, 200/204 bodies written, anything
  else ``wget: server returned error: HTTP/1.1 404 Not Found`` and exit 1.
* ``sysupgrade``: checks the image exists (``--test``) or prints what a flash prints; nothing is flashed.

Runs on the host's Python (standard library only), bound into the sandbox at ``/opt/host``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any

RECORDED = Path("/recorded")


def record(tool: str, argv: list[str], **extra: Any) -> None:
    with (RECORDED / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"tool": tool, "argv": argv, **extra}) + "\n")


# -- ubus, opkg, uci --------------------------------------------------------------------------------


def ubus(argv: list[str]) -> int:
    record("ubus", argv)
    if argv == ["call", "system", "board"]:
        sys.stdout.write((RECORDED / "ubus-call-system-board.json").read_text())
        return 0
    sys.stderr.write("Command failed: Not found\n")
    return 4


def opkg(argv: list[str]) -> int:
    record("opkg", argv)
    if argv[:1] == ["list-installed"]:
        sys.stdout.write((RECORDED / "opkg-list-installed.txt").read_text())
        return 0
    sys.stderr.write("opkg: this stand-in only lists installed packages\n")
    return 255


def _uci_sections(package: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    path = Path("/etc/config") / package
    if not path.exists():
        return sections
    for line in path.read_text().splitlines():
        words = re.findall(r"'([^']*)'|\"([^\"]*)\"|(\S+)", line)
        tokens = [a or b or c for a, b, c in words]
        if not tokens or tokens[0].startswith("#"):
            continue
        if tokens[0] == "config":
            current = sections.setdefault(tokens[2] if len(tokens) > 2 else f"@{tokens[1]}", {})
        elif tokens[0] == "option" and current is not None and len(tokens) > 2:
            current[tokens[1]] = tokens[2]
    return sections


def uci(argv: list[str]) -> int:
    record("uci", argv)
    quiet = "-q" in argv
    args = [arg for arg in argv if arg != "-q"]
    if len(args) == 2 and args[0] == "get":
        parts = args[1].split(".")
        if len(parts) == 3:
            value = _uci_sections(parts[0]).get(parts[1], {}).get(parts[2])
            if value is not None:
                print(value)
                return 0
        if not quiet:
            sys.stderr.write("uci: Entry not found\n")
        return 1
    sys.stderr.write("uci: this stand-in only answers 'get'\n")
    return 1


# -- jsonfilter -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\.\s*([A-Za-z_][A-Za-z0-9_]*)|\.\s*\*|\[\s*\*\s*\]|\[\s*(-?\d+)\s*\]"""
    r"""|\[\s*"((?:[^"\\]|\\.)*)"\s*\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]"""
)


def _parse_path(expression: str) -> tuple[str | None, list[Any]]:
    label = None
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", expression, re.S)
    if match:
        label, expression = match.group(1), match.group(2)
    expression = expression.strip()
    if not expression or expression[0] not in "$@":
        raise SyntaxError(expression)
    steps: list[Any] = []
    position = 1
    while position < len(expression):
        token = _TOKEN.match(expression, position)
        if token is None:
            raise SyntaxError(expression)
        name, index, double, single = token.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        elif double is not None or single is not None:
            steps.append(double if double is not None else single)
        else:
            steps.append(Ellipsis)
        position = token.end()
    return label, steps


def _match(value: Any, steps: list[Any]) -> list[Any]:
    if not steps:
        return [value]
    step, rest = steps[0], steps[1:]
    if step is Ellipsis:
        children = list(value.values()) if isinstance(value, dict) else value
        children = children if isinstance(children, list) else []
        return [found for child in children for found in _match(child, rest)]
    if isinstance(step, int):
        if isinstance(value, list) and -len(value) <= step < len(value):
            return _match(value[step], rest)
        return []
    if isinstance(value, dict) and step in value:
        return _match(value[step], rest)
    return []


def _json_c(value: Any) -> str:
    """``json_object_to_json_string`` (JSON_C_TO_STRING_SPACED) as jsonfilter prints it."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        return "{ " + ", ".join(f"{json.dumps(k)}: {_json_c(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[ ]" if not value else "[ " + ", ".join(_json_c(v) for v in value) + " ]"
    return json.dumps(value).replace("/", "\\/")


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _export(label: str | None, matches: list[Any]) -> str:
    if label is None:
        lines = []
        for found in matches:
            if found is None:
                continue
            lines.append(found if isinstance(found, str) else _json_c(found))
        return "".join(line + "\n" for line in lines)
    words: list[str] = []
    for found in matches:
        if isinstance(found, dict):
            words += [_shell_quote(key) for key, item in found.items() if item is not None]
        elif isinstance(found, list):
            words += [str(index) for index in range(len(found))]
        elif isinstance(found, bool):
            words.append("1" if found else "0")
        elif isinstance(found, (int, float)):
            words.append(str(found) if isinstance(found, int) else f"{found:f}")
        elif isinstance(found, str):
            words.append(_shell_quote(found))
    if not matches:
        return ""
    return f"export {label}=" + "\\ ".join(words) + "; "


def jsonfilter(argv: list[str]) -> int:
    record("jsonfilter", argv)
    source: str | None = None
    input_path: str | None = None
    document: Any = None
    parsed = False
    status = 0
    arguments = list(argv)
    while arguments:
        option = arguments.pop(0)
        if option in ("-i", "-s", "-e", "-l", "-F") and not arguments:
            sys.stderr.write(f"jsonfilter: option requires an argument -- '{option[1]}'\n")
            return 1
        if option == "-i":
            input_path = arguments.pop(0)
            if not os.path.exists(input_path):
                sys.stderr.write(f"Failed to open {input_path}: No such file or directory\n")
                return 125
        elif option == "-s":
            source = arguments.pop(0)
        elif option in ("-l", "-F"):
            arguments.pop(0)
        elif option == "-q":
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - as fclose(stderr)
        elif option == "-e":
            expression = arguments.pop(0)
            if not parsed:
                text = (
                    source
                    if source is not None
                    else (Path(input_path).read_text() if input_path else sys.stdin.read())
                )
                try:
                    document = json.loads(text)
                except ValueError:
                    sys.stderr.write("Failed to parse json data: unexpected character\n")
                    return 126
                parsed = True
            try:
                label, steps = _parse_path(expression)
            except SyntaxError:
                sys.stderr.write(f"Syntax error: Unexpected character\nIn expression {expression}\n")
                continue
            matches = _match(document, steps)
            sys.stdout.write(_export(label, matches))
            if not matches:
                status = 1
        else:
            sys.stderr.write(f"jsonfilter: this stand-in does not know {option}\n")
            return 1
    return status


# -- uclient-fetch ----------------------------------------------------------------------------------


def uclient_fetch(argv: list[str]) -> int:
    output = None
    post_data = None
    user_agent = "uclient-fetch"
    quiet = False
    timeout = 60.0
    urls: list[str] = []
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        if argument == "-O":
            output = arguments.pop(0)
        elif argument in ("-U", "--user-agent"):
            user_agent = arguments.pop(0)
        elif argument.startswith("--user-agent="):
            user_agent = argument.split("=", 1)[1]
        elif argument == "-T":
            timeout = float(arguments.pop(0))
        elif argument.startswith("--timeout="):
            timeout = float(argument.split("=", 1)[1])
        elif argument.startswith("--post-data="):
            post_data = argument.split("=", 1)[1]
        elif argument == "-q":
            quiet = True
        elif argument in ("-4", "-6", "--no-check-certificate"):
            pass
        elif argument.startswith("-"):
            sys.stderr.write(f"Usage: {sys.argv[0]} [options] <URL>\n")
            return 1
        else:
            urls.append(argument)
    record("uclient-fetch", argv, post_data=post_data)
    if not urls:
        sys.stderr.write(f"Usage: {sys.argv[0]} [options] <URL>\n")
        return 1

    def say(text: str) -> None:
        if not quiet:
            sys.stderr.write(text + "\n")

    url = urllib.parse.urlsplit(urls[0])
    say(f"Downloading '{urls[0]}'")
    if url.scheme != "http":
        sys.stderr.write(f"{sys.argv[0]}: SSL support not available, please install ustream-ssl\n")
        return 1
    connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=timeout)
    headers = {"User-Agent": user_agent}
    if post_data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    target = url.path + (f"?{url.query}" if url.query else "")
    try:
        method = "POST" if post_data is not None else "GET"
        connection.request(method, target, body=post_data, headers=headers)
        say(f"Connecting to {url.hostname}:{url.port or 80}")
        response = connection.getresponse()
        body = response.read()
    except ConnectionRefusedError:
        say("Connection error: Connection failed")
        return 4
    except TimeoutError:
        say("Connection error: Connection timed out")
        return 4
    if response.status not in (200, 204):
        say(f"HTTP error {response.status}")
        return 8
    target_file = output or (os.path.basename(url.path) or "index.html")
    if target_file == "-":
        say("Writing to stdout")
        sys.stdout.buffer.write(body)
    else:
        say(f"Writing to '{target_file}'")
        Path(target_file).write_bytes(body)
    say(f"Download completed ({len(body)} bytes)")
    return 0


# -- BusyBox wget ----------------------------------------------------------------------------------

_WGET_VALUE_OPTIONS = {
    "-O": "output", "--output-document": "output", "-U": "agent", "--user-agent": "agent",
    "-T": "timeout", "--timeout": "timeout", "--post-data": "post_data", "-P": None, "-o": None,
    "-Y": None, "--header": None, "--post-file": None,
}  # fmt: skip


def wget(argv: list[str]) -> int:
    values: dict[str, str] = {}
    quiet = False
    urls: list[str] = []
    arguments = list(argv)
    while arguments:
        argument = arguments.pop(0)
        option, has_value, value = argument.partition("=")
        takes_value = option.startswith("--") if has_value else bool(arguments)
        if option in _WGET_VALUE_OPTIONS and takes_value:
            key = _WGET_VALUE_OPTIONS[option]
            value = value if has_value else arguments.pop(0)
            if key:
                values[key] = value
        elif argument in ("-q", "--quiet"):
            quiet = True
        elif argument in ("-c", "-S", "-4", "-6", "--no-check-certificate", "--spider"):
            pass
        elif argument.startswith("-"):
            sys.stderr.write(f"wget: unrecognized option '{argument}'\nBusyBox v1.36.1 multi-call binary.\n")
            return 1
        else:
            urls.append(argument)
    post_data = values.get("post_data")
    record("wget", argv, post_data=post_data)
    if not urls:
        sys.stderr.write("BusyBox v1.36.1 multi-call binary.\n\nUsage: wget [-cqS] [--spider] URL...\n")
        return 1

    def say(text: str) -> None:
        if not quiet:
            sys.stderr.write(text + "\n")

    url = urllib.parse.urlsplit(urls[0])
    if url.scheme != "http":
        sys.stderr.write(f"wget: not an http or ftp url: {urls[0]}\n")
        return 1
    port = url.port or 80
    timeout = float(values.get("timeout", 900))
    connection = http.client.HTTPConnection(url.hostname or "", port, timeout=timeout)
    headers = {"User-Agent": values.get("agent", "Wget"), "Connection": "close"}
    if post_data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    target = url.path + (f"?{url.query}" if url.query else "")
    say(f"Connecting to {url.hostname}:{port} ({url.hostname}:{port})")
    try:
        method = "POST" if post_data is not None else "GET"
        connection.request(method, target, body=post_data, headers=headers)
        response = connection.getresponse()
        body = response.read()
    except ConnectionRefusedError:
        sys.stderr.write(f"wget: can't connect to remote host ({url.hostname}): Connection refused\n")
        return 1
    except TimeoutError:
        sys.stderr.write("wget: download timed out\n")
        return 1
    if response.status not in (200, 204):
        sys.stderr.write(f"wget: server returned error: HTTP/1.1 {response.status} {response.reason}\n")
        return 1
    target_file = values.get("output") or (os.path.basename(url.path) or "index.html")
    if target_file == "-":
        say("writing to stdout")
        sys.stdout.buffer.write(body)
        say("written to stdout")
        return 0
    say(f"saving to '{target_file}'")
    Path(target_file).write_bytes(body)
    name = os.path.basename(target_file)[:20]
    say(f"{name:<20} 100% |{'*' * 31}| {len(body):>5}  0:00:00 ETA")
    say(f"'{target_file}' saved")
    return 0


# -- sysupgrade -------------------------------------------------------------------------------------


def sysupgrade(argv: list[str]) -> int:
    images = [argument for argument in argv if not argument.startswith("-")]
    image = images[-1] if images else None
    digest = hashlib.sha256(Path(image).read_bytes()).hexdigest() if image and Path(image).is_file() else None
    record("sysupgrade", argv, sha256=digest)
    if image is None or digest is None:
        usage = "Usage: sysupgrade [<upgrade-option>...] <image file or URL>"
        sys.stderr.write(f"Image not found: {image}\n" if image else usage + "\n")
        return 1
    if "-T" in argv or "--test" in argv:
        return 0
    if "-n" not in argv:
        print("Saving config files...")
    print("Commencing upgrade. Closing all shell sessions.")
    return 0


TOOLS = {
    "ubus": ubus,
    "opkg": opkg,
    "uci": uci,
    "jsonfilter": jsonfilter,
    "uclient-fetch": uclient_fetch,
    "wget": wget,
    "sysupgrade": sysupgrade,
}

if __name__ == "__main__":
    sys.exit(TOOLS[os.path.basename(sys.argv[0])](sys.argv[1:]))
