"""Hostile services files: a corpus written by hand, each with where and what the error must say,
and seeded random mutations of the shipped file. Plain data and the standard library only, so the
same corpus can be run against any version of the loader."""

import random
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = (REPO / "deploy" / "exporter" / "services.yml").read_bytes()


@dataclass(frozen=True)
class Hostile:
    name: str
    content: bytes
    where: str
    """How the first error begins: its YAML path, `line N, column M`, or `(file)`."""
    message: str
    """Text the first error with that location contains."""


def service(*lines: str, url: str = "http://127.0.0.1/") -> bytes:
    """A one-service file with `lines` (YAML, indented as keys of the service) added."""
    body = "".join(f"    {line}\n" for line in lines)
    return f"services:\n  - id: a\n    url: {url}\n{body}".encode()


def with_url(url: str) -> bytes:
    return f'services:\n  - id: a\n    url: "{url}"\n'.encode()


def nested_flow(depth: int) -> bytes:
    return service("method: POST", "json: " + "[" * depth + "]" * depth)


def nested_block(depth: int) -> bytes:
    lines = ["method: POST", "json:"] + ["  " * (level + 1) + "a:" for level in range(depth)]
    return service(*lines)


def alias_bomb() -> bytes:
    """Nine levels of nine aliases: 597 bytes that stand for 387 million strings."""
    levels = ['      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        refs = ", ".join([f"*l{level - 1}"] * 9)
        levels.append(f"      l{level}: &l{level} [{refs}]")
    return service("method: POST", "json:") + ("\n".join(levels) + "\n").encode()


HOSTILE: list[Hostile] = [
    # Encoding
    Hostile(
        "latin-1 byte",
        service("name: Caf\xe9 status").replace("\xc3\xa9".encode("latin-1"), b"\xe9"),
        "line 4, column 14",
        "byte 0xe9 (offset 60) is not UTF-8",
    ),
    Hostile("invalid UTF-8 start", b"services: []\n\xff\xfe\xfd\n", "line 2, column 1", "0xff"),
    Hostile("UTF-16 with BOM", SHIPPED.decode().encode("utf-16"), "(file)", "UTF-16 byte order"),
    Hostile("UTF-32 with BOM", SHIPPED.decode().encode("utf-32"), "(file)", "UTF-32 byte order"),
    Hostile("UTF-16 without BOM", b"s\x00e\x00r\x00", "line 1, column 2", "U+0000"),
    Hostile("escape character", service("name: \x1b[31mred"), "line 4, column 11", "U+001B"),
    # Structure
    Hostile("500-deep flow nesting", nested_flow(500), "services[0].json[0][0]", "deeper than 64"),
    Hostile("500-deep block nesting", nested_block(500), "services[0].json.a.a", "deeper than 64"),
    Hostile("alias bomb", alias_bomb(), "services[0].json.l0", "aliases are not allowed"),
    Hostile(
        "merge key from an anchor",
        b"defaults: &d {interval: 30s}\nservices:\n  - {<<: *d, id: a, url: 'http://x/'}\n",
        "defaults",
        "anchors and aliases are not allowed",
    ),
    Hostile(
        "inline merge key",
        b"services:\n  - {<<: {interval: 30s}, id: a, url: 'http://x/'}\n",
        "services[0]",
        "merge keys (<<) are not allowed",
    ),
    Hostile(
        "duplicate key in a service",
        service("interval: 30s", "interval: 60s"),
        "services[0].interval",
        "duplicate key (line 5; first at line 4)",
    ),
    Hostile(
        "duplicate top-level key",
        b"services: []\ndefaults: {}\nservices: []\n",
        "services",
        "duplicate key (line 3; first at line 1)",
    ),
    Hostile(
        "duplicate key in expect",
        service("expect: {status: [200], status: [201]}"),
        "services[0].expect.status",
        "duplicate key",
    ),
    Hostile("two documents", b"services: []\n---\nservices: []\n", "line 2, column 1", "document"),
    Hostile("complex key", b"? [a, b]\n: 1\n", "(top level)", "a key must be a plain value"),
    Hostile("tab indentation", b"services:\n\t- id: a\n", "line 2, column 1", "token"),
    Hostile(
        "unclosed flow mapping",
        b"services: [{id: a, url: 'http://x/'",
        "line 2, column 1",
        "expected ',' or '}'",
    ),
    Hostile("empty file", b"", "(top level)", "must be a mapping"),
    Hostile("a scalar", b"services\n", "(top level)", "must be a mapping"),
    Hostile("9 MiB of comments", b"# x\n" * (9 << 18), "(file)", "larger than 8 MiB"),
    # Values Python cannot take
    Hostile(
        "5000-digit integer",
        service("max_body_bytes: " + "9" * 5000),
        "services[0].max_body_bytes",
        "integer of 5000 digits",
    ),
    Hostile(
        "5000-digit hex integer in a body",
        service("method: POST", "json: {n: 0x" + "f" * 5000 + "}"),
        "services[0].json.n",
        "integer of 5002 digits",
    ),
    Hostile(
        "impossible date",
        service("method: POST", "json: {day: 2001-13-45}"),
        "services[0].json.day",
        "cannot read '2001-13-45' as timestamp",
    ),
    Hostile("!!bool maybe", service("public: !!bool maybe"), "services[0].public", "as bool"),
    Hostile("!!float x", service("json: !!float x"), "services[0].json", "as float"),
    Hostile(
        "python tag",
        service("name: !!python/object/apply:os.system [echo]"),
        "services[0].name",
        "unknown tag",
    ),
    Hostile("unknown tag", service("name: !secret x"), "services[0].name", "unknown tag '!secret'"),
    Hostile(
        "!env without a name",
        service("headers: {X-Token: !env ''}"),
        "services[0].headers.X-Token",
        "!env needs a variable name",
    ),
    # Values the HTTP client would refuse at run time
    Hostile(
        "date in a JSON body",
        service("method: POST", "json: {since: 2001-01-01}"),
        "services[0].json",
        "must be JSON data",
    ),
    Hostile("NaN in a JSON body", service("json: {x: .nan}"), "services[0].json", "JSON data"),
    Hostile("bytes in a JSON body", service("json: !!binary aGk="), "services[0].json", "JSON"),
    Hostile("set in a JSON body", service("json: !!set {a}"), "services[0].json", "JSON data"),
    Hostile(
        "line break in a header",
        service('headers: {X-A: "a\\r\\nX-Injected: 1"}'),
        "services[0].headers.X-A",
        "printable ASCII",
    ),
    Hostile("non-ASCII header", service("headers: {X-A: Ñ}"), "services[0].headers.X-A", "ASCII"),
    Hostile(
        "header name with a space",
        service("headers: {X Bad: v}"),
        "services[0].headers.'X Bad'",
        "not a valid HTTP header name",
    ),
    Hostile("port 99999", with_url("http://127.0.0.1:99999/"), "services[0].url", "1 to 65535"),
    Hostile("port -1", with_url("http://127.0.0.1:-1/"), "services[0].url", "1 to 65535"),
    Hostile("port 0", with_url("http://127.0.0.1:0/"), "services[0].url", "1 to 65535"),
    Hostile("port abc", with_url("http://127.0.0.1:abc/"), "services[0].url", "1 to 65535"),
    Hostile("unclosed IPv6", with_url("http://[::1/"), "services[0].url", "not a valid URL"),
    Hostile("bad IPv6", with_url("http://[::g]/"), "services[0].url", "IPv6"),
    Hostile("no host", with_url("http://:80/"), "services[0].url", "has no host"),
    Hostile("empty authority", with_url("http:///path"), "services[0].url", "has no host"),
    Hostile("only a scheme", with_url("https://"), "services[0].url", "has no host"),
    Hostile("space in host", with_url("http://exa mple.org/"), "services[0].url", "spaces"),
    Hostile("tab in path", with_url("http://a/\\tb"), "services[0].url", "control characters"),
    Hostile("bad IPv4", with_url("http://999.1.1.1/"), "services[0].url", "not a valid URL"),
    Hostile("zero-width host", with_url("http://ex\u200bample/"), "services[0].url", "IDNA"),
    Hostile("ftp", with_url("ftp://example.org/"), "services[0].url", "http:// or https://"),
    Hostile("one slash", with_url("http:/example.org/"), "services[0].url", "absolute"),
    Hostile(
        "poll URL port",
        service(
            "kind: async_job", "job: {poll_url: 'http://127.0.0.1:70000/{id}'}", url="http://x/"
        ),
        "services[0].job.poll_url",
        "1 to 65535",
    ),
    # Durations and bounds
    Hostile(
        "Arabic-Indic digits", service('interval: "\u0661\u0660s"'), "services[0].interval", "ASCII"
    ),
    Hostile("fullwidth digit", service('timeout: "\uff15s"'), "services[0].timeout", "non-ASCII"),
    Hostile(
        "400-digit interval",
        service(f"interval: {'9' * 400}s"),
        "services[0].interval",
        "too long for a duration",
    ),
    Hostile("interval of 25h", service("interval: 25h"), "services[0].interval", "at most 1d"),
    Hostile("interval of 0s", service("interval: 0s"), "services[0].interval", "longer than 0s"),
    Hostile(
        "timeout over the interval",
        service("interval: 1m", "timeout: 2m"),
        "services[0].timeout",
        "not be longer than the interval",
    ),
    Hostile(
        "backoff of 2d", service("retries: {backoff: 2d}"), "services[0].retries.backoff", "1d"
    ),
    Hostile(
        "heartbeat every 32 days",
        b"services: [{id: a, kind: heartbeat, interval: 32d, token: abcdefghijklmnopq}]\n",
        "services[0].interval",
        "at most 31d",
    ),
    Hostile(
        "heartbeat grace of 40 days",
        b"services: [{id: a, kind: heartbeat, grace: 40d, token: abcdefghijklmnopq}]\n",
        "services[0].grace",
        "at most 31d",
    ),
    Hostile(
        "a million attempts",
        service("retries: {attempts: 1000000}"),
        "services[0].retries.attempts",
        "from 1 to 10",
    ),
    Hostile(
        "objective of a year",
        service("latency_objective: 1y"),
        "services[0].latency_objective",
        "at most 1d",
    ),
    Hostile(
        "poll interval over the deadline",
        service(
            "kind: async_job",
            "job: {poll_url: 'http://x/{id}', deadline: 10s, poll_interval: 20s}",
        ),
        "services[0].job.poll_interval",
        "not be longer than the deadline",
    ),
    Hostile(
        "a terabyte body",
        service(f"max_body_bytes: {1 << 40}"),
        "services[0].max_body_bytes",
        "from 1 to 67108864",
    ),
    Hostile(
        "regex repeat too large",
        service("expect: {body_regex: 'a{4294967296}'}"),
        "services[0].expect.body_regex",
        "regular expression",
    ),
    Hostile(
        "regex nested 1000 deep",
        service(f"expect: {{body_regex: '{'(' * 1000}{')' * 1000}'}}"),
        "services[0].expect.body_regex",
        "regular expression",
    ),
]

# Values that a mutation may drop in place of a scalar: each is a way a file goes wrong.
_HOSTILE_VALUES = [
    "99999",
    "-1",
    "0",
    "\u0661\u0660s",
    "\uff15s",
    "9" * 400 + "s",
    "9" * 5000,
    "1e999",
    ".nan",
    "*a",
    "&a x",
    "!!binary x",
    "!env",
    "!!timestamp 2001-13-45",
    "2001-13-45",
    "{",
    "[",
    "'",
    '"\\ud800"',
    "~",
    "[" * 200 + "]" * 200,
    "http://[::1/",
    "http://127.0.0.1:99999/",
    "http://exa mple/",
    '"a\\nb"',
]
_YAML_BYTES = b":[]{}&*!|>'\"%@`-#,?\n\t "


def mutations(seed: int, count: int) -> list[tuple[str, bytes]]:
    """`count` broken variants of the shipped file, the same ones for the same seed."""
    rng = random.Random(seed)
    return [_mutate(rng, index) for index in range(count)]


def _mutate(rng: random.Random, index: int) -> tuple[str, bytes]:
    data = bytearray(SHIPPED)
    operation = rng.choice(
        ("flip", "yaml byte", "truncate", "splice", "delete", "duplicate line", "value")
    )
    at = rng.randrange(len(data))
    if operation == "flip":
        data[at] = rng.randrange(256)
    elif operation == "yaml byte":
        data[at] = rng.choice(_YAML_BYTES)
    elif operation == "truncate":
        del data[at:]
    elif operation in ("splice", "delete"):
        start = rng.randrange(len(data))
        chunk = data[start : start + rng.randrange(1, 200)]
        if operation == "splice":
            data[at:at] = chunk
        else:
            del data[start : start + len(chunk)]
    elif operation == "duplicate line":
        lines = data.split(b"\n")
        line = rng.randrange(len(lines))
        lines.insert(line, lines[line])
        data = bytearray(b"\n".join(lines))
    else:
        lines = data.split(b"\n")
        candidates = [i for i, line in enumerate(lines) if b": " in line]
        line = rng.choice(candidates)
        key = lines[line].split(b": ")[0]
        lines[line] = key + b": " + rng.choice(_HOSTILE_VALUES).encode()
        data = bytearray(b"\n".join(lines))
    return f"mutation {index} ({operation} at {at})", bytes(data)
