"""Redaction of credentials before anything is logged or exported (brief: no secrets in logs)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "redact_uri", "redact_mapping", "redact_yaml", "looks_secret"]

REDACTED = "***"
# Searched in the whole key: Spark settings (cluster.spark_conf) name credentials in dotted keys such as
# spark.hadoop.fs.s3a.secret.key, whose last part ("key") says nothing.
_SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|(api|access|private|account)[_.-]?key|credential|auth)", re.I)
# scheme://user:password@host  ->  scheme://user:***@host (the user may be empty, as in redis://:password@host;
# the password runs to the last @ before the path, so an unescaped @ in it does not leave its tail visible)
_URI_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^/\s]+)(?P<tail>@)")
# ?password=...&token=... query parameters
_QUERY_SECRET = re.compile(
    r"(?P<k>[?&](?:password|passwd|pwd|secret|token|api_key|apikey|access_key|sig|signature)=)(?P<v>[^&\s]+)",
    re.I,
)


def looks_secret(key: str) -> bool:
    """True for config keys that name credentials (password, token, secret_key, ...)."""
    return bool(_SECRET_KEY.search(key))


def redact_uri(text: str) -> str:
    """Hide passwords embedded in URIs and secret query parameters."""
    text = _URI_PASSWORD.sub(lambda m: m["head"] + REDACTED + m["tail"], text)
    return _QUERY_SECRET.sub(lambda m: m["k"] + REDACTED, text)


def redact_mapping(data: Any, _key: str = "") -> Any:
    """A copy of nested dicts/lists with credential-like keys masked and URI passwords hidden."""
    if isinstance(data, Mapping):
        return {
            k: (REDACTED if looks_secret(str(k)) and v not in (None, "") else redact_mapping(v, str(k)))
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return type(data)(redact_mapping(v, _key) for v in data)
    if isinstance(data, str):
        return redact_uri(data)
    return data


_YAML_PAIR = re.compile(r"^(?P<head>\s*(?:-\s+)?(?P<key>[\w.\-]+)\s*:\s+)(?P<value>[^#\s][^#]*?)(?P<tail>\s*(?:#.*)?)$")


def redact_yaml(text: str) -> str:
    """A YAML file's text with the values of credential-like keys masked (line by line, comments kept) and
    URI passwords hidden: a config file as it may be logged."""

    def line(s: str) -> str:
        m = _YAML_PAIR.match(s)
        if m and looks_secret(m.group("key")):
            return f"{m.group('head')}{REDACTED}{m.group('tail')}"
        return s

    return redact_uri("\n".join(line(s) for s in text.split("\n")))


_OVERRIDE = re.compile(r"(?P<key>[\w.\-+~/]+)=(?P<value>\S+)")
_DICT_ENTRY = re.compile(r"(?<=[{,\s])(?P<key>['\"]?[\w.\-]+['\"]?)\s*:\s*(?P<value>[^,}\s]+)")


def redact_text(text: str) -> str:
    """``redact_uri`` plus ``KEY=VALUE`` pairs (command-line overrides) whose key looks like a credential."""

    def mask(m: re.Match[str]) -> str:
        return f"{m.group('key')}={REDACTED}" if looks_secret(m.group("key")) else m.group(0)

    def mask_entry(m: re.Match[str]) -> str:
        return f"{m.group('key')}:{REDACTED}" if looks_secret(m.group("key")) else m.group(0)

    # Hydra prints overrides with ':' escaped ('postgresql\\://u\\:pw@host'): unescaped, URI passwords show
    text = _OVERRIDE.sub(mask, redact_uri(text.replace("\\:", ":")))
    return _DICT_ENTRY.sub(mask_entry, text)  # a dict value's entries: key={a.secret.key:VALUE,...}


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's text (Hydra logs a multirun's overrides, for one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
