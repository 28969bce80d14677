"""Where a dataset lives: a local path or a URI (s3://, gs://, https://, file://), read with pandas through fsspec.

``dataset.path`` is checked here before a study or an MLflow run exists: a missing object or bucket, absent or
refused credentials, an unreachable endpoint or a missing filesystem package each end as one LrsweepError line.

This module never reads credentials itself. The filesystems find them the usual way: for S3, botocore's chain
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, instance roles), and AWS_ENDPOINT_URL or a
profile's endpoint_url for an S3-compatible store. The one credential it handles is a user:password in an
http(s) URI, which it moves out of the URL into the HTTP client's authentication, so that no URL, message or
repr carries it. Whatever is shown of a URI goes through redact_uri.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import hashlib
import logging
import os
import posixpath
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import fsspec
import pandas as pd

from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_uri

__all__ = [
    "Location",
    "is_uri",
    "scheme",
    "resolve",
    "is_dir",
    "parquet_parts",
    "size_bytes",
    "read_pandas",
    "sha256",
    "footer_sha256",
]

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
# The package behind each scheme, and how to install it, for the message when it is missing.
_PACKAGES = {
    "s3": ("s3fs", "pip install 'lrsweep[s3]'"),
    "s3a": ("s3fs", "pip install 'lrsweep[s3]'"),
    "gs": ("gcsfs", "pip install 'lrsweep[gcs]'"),
    "gcs": ("gcsfs", "pip install 'lrsweep[gcs]'"),
    "http": ("aiohttp", "pip install aiohttp"),
    "https": ("aiohttp", "pip install aiohttp"),
}
_S3 = ("s3", "s3a")
_HTTP = ("http", "https")
_CREDENTIALS_FIX = {
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws)",
    "gs": "set GOOGLE_APPLICATION_CREDENTIALS, or run 'gcloud auth application-default login'",
    "http": "check the user and password in the URL",
}
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zip": "zip"}


def scheme(text: str) -> str | None:
    """The URI scheme of ``text`` in lower case (``"s3"``, ``"file"``, ...), or None for a plain path."""
    m = _SCHEME.match(str(text))
    if m is None or len(m["scheme"]) == 1:  # C://data is a Windows drive letter, not a scheme
        return None
    return m["scheme"].lower()


def is_uri(text: str) -> bool:
    """True for ``scheme://...`` (file:// included), False for a local path."""
    return scheme(text) is not None


@dataclass(frozen=True)
class Location:
    """A dataset's place, checked to exist. ``text`` is what messages, logs and fingerprints may show."""

    text: str  # as the user gave it (a local path expanded), credentials redacted
    # what fsspec opens: a local path, or the URI without any user:password; a secret query parameter (the
    # signature of a presigned URL) must stay in it to work, so it is left out of repr: show text instead
    url: str = field(repr=False)
    path: Path | None  # the local file or folder; None when remote
    is_dir: bool  # a folder of Parquet parts (an S3/GCS prefix when remote)
    fs: Any = field(repr=False, compare=False)  # the fsspec filesystem, holding any HTTP authentication
    fs_path: str = field(repr=False, compare=False)  # url as the filesystem names it (bucket/key for S3)

    @property
    def is_remote(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        """The last part of the path (``data.csv.gz``), for telling the format."""
        return self.path.name if self.path is not None else posixpath.basename(urlsplit(self.url).path.rstrip("/"))

    @property
    def scheme(self) -> str:
        return scheme(self.url) or "file"

    def __str__(self) -> str:
        return self.text


def resolve(text: str | os.PathLike[str]) -> Location:
    """Check that ``text`` names an existing file, or a folder with Parquet parts, and say how to open it."""
    text = os.fspath(text)
    proto = scheme(text)
    display = redact_uri(text)
    if proto is None or proto == "file":
        path = _file_path(text, display) if proto else Path(text).expanduser()
        return _resolve_local(path, display if proto else str(path))
    if proto not in fsspec.available_protocols():
        raise LrsweepError(
            f"unknown URI scheme {proto!r} in {display!r}",
            "give a local path or an s3://, gs://, https:// or file:// URI",
        )
    url, headers = _split_credentials(text, proto, display)
    try:
        # a new instance each time: fsspec's cache would keep the credentials and endpoint of an earlier call
        fs, fs_path = fsspec.core.url_to_fs(url, skip_instance_cache=True, **_client_options(proto, headers))
    except ImportError:
        package, fix = _PACKAGES.get(proto, (proto, f"install the fsspec filesystem for {proto}://"))
        raise LrsweepError(f"reading {proto}:// needs the {package} package", fix) from None
    except ValueError as exc:
        raise LrsweepError(f"cannot use {display!r}: {_first_line(exc)}", "check dataset.path") from None
    try:
        info = fs.info(fs_path)
    except Exception as exc:
        error = _real_error(exc)
        if isinstance(error, FileNotFoundError):
            raise _not_found(fs, fs_path, proto, display) from None
        raise _failure(error, proto, display) from None
    loc = Location(display, url, None, info.get("type") == "directory", fs, fs_path)
    if loc.is_dir and not _part_entries(loc):
        raise LrsweepError(
            f"{display!r} is a folder with no Parquet files", "point dataset.path at a CSV or Parquet file"
        )
    return loc


def is_dir(location: Location) -> bool:
    """A folder of Parquet parts (a prefix in a bucket), rather than one file."""
    return location.is_dir


def parquet_parts(location: Location) -> list[Path] | list[str]:
    """A folder's ``*.parquet`` files in name order, or the file itself: Paths when local, else the names in
    the filesystem (``bucket/key`` for S3), redacted, for showing and counting (open them through the Location)."""
    if location.path is not None:
        return [Path(e["name"]) for e in _part_entries(location)] if location.is_dir else [location.path]
    names = [e["name"] for e in _part_entries(location)] if location.is_dir else [location.fs_path]
    return [redact_uri(n) for n in names]


def size_bytes(location: Location) -> int | None:
    """Bytes stored (all parts of a folder); None when the server does not say."""
    with _reporting(location):
        if location.is_dir:
            return sum(int(e.get("size") or 0) for e in _part_entries(location))
        size = location.fs.info(location.fs_path).get("size")
    return None if size is None else int(size)


def read_pandas(
    location: Location, fmt: str = "auto", *, sep: str | None = None, encoding: str | None = None
) -> pd.DataFrame:
    """Read a CSV (compressed by its extension, e.g. .csv.gz) or Parquet file, or a folder of Parquet parts.

    A CSV's separator is sniffed from its first 64 KB unless ``sep`` is given; its encoding is ``encoding``, else
    UTF-8 (a byte-order mark is skipped)."""
    name = location.name.lower()
    if fmt == "auto":
        fmt = "parquet" if location.is_dir or name.endswith((".parquet", ".pq")) else "csv"
    try:
        if fmt == "parquet" and location.is_dir:
            return pd.read_parquet(location.fs_path, filesystem=location.fs)
        if fmt == "parquet":
            with location.fs.open(location.fs_path, "rb") as fh:
                return pd.read_parquet(fh)
        compression = _COMPRESSION.get(posixpath.splitext(name)[1])
        encoding = encoding or "utf-8-sig"
        sep = sep.replace("\\t", "\t") if sep else _sniff_sep(location, compression, encoding)
        with _open_stream(location, location.fs_path) as fh:
            df = pd.read_csv(fh, compression=compression, low_memory=False, sep=sep, encoding=encoding)
        if any(re.fullmatch(r".+\.\d+", str(c)) and str(c).rsplit(".", 1)[0] in df.columns for c in df.columns):
            _check_header(location, compression, sep, encoding)  # pandas renamed a repeated 'a' to 'a.1': was it?
        return df
    except pd.errors.EmptyDataError:
        raise LrsweepError(f"data file {location.text!r} is empty", "give a file with a header row and data") from None
    except UnicodeDecodeError as exc:
        raise LrsweepError(
            f"cannot read {location.text!r} as {fmt}: it is not {exc.encoding} text (byte "
            f"0x{exc.object[exc.start]:02x} at offset {exc.start} of a chunk)",
            "set dataset.encoding to the file's encoding, e.g. dataset.encoding=latin-1 (or cp1252); a Parquet file "
            "takes dataset.format=parquet",
        ) from None
    except (ValueError, EOFError, gzip.BadGzipFile) as exc:  # parse errors of pandas and pyarrow
        fix = (
            "check the file; for a CSV, dataset.sep and dataset.encoding say how to read it (e.g. dataset.sep=';')"
            if fmt == "csv"
            else "check the file, or set dataset.format=csv if it is a CSV"
        )
        raise LrsweepError(f"cannot read {location.text!r} as {fmt}: {_first_line(exc)}", fix) from None
    except Exception as exc:
        raise _failure(exc, location.scheme, location.text) from None


SNIFF_BYTES = 65536
_SEPARATORS = ",;\t|"


def _sniff_sep(location: Location, compression: str | None, encoding: str) -> str:
    """The CSV's separator, from its first lines (csv.Sniffer among , ; tab |); ',' when it cannot tell."""
    import bz2
    import csv
    import lzma

    opener = {"gzip": gzip.GzipFile, "bz2": bz2.BZ2File, "xz": lzma.LZMAFile}.get(compression or "")
    if compression and opener is None:  # zip, zstd: pandas reads them; sniffing them is not worth a dependency
        return ","
    with _open_stream(location, location.fs_path) as fh:
        raw = (opener(fileobj=fh) if opener else fh).read(SNIFF_BYTES)
    text = raw.decode(encoding, errors="replace")
    lines = text.splitlines()[:-1] if len(raw) == SNIFF_BYTES else text.splitlines()  # the last may be cut
    sample = "\n".join(lines[:50])
    if not sample:
        return ","
    try:
        return csv.Sniffer().sniff(sample, delimiters=_SEPARATORS).delimiter
    except csv.Error:
        return ","


def _check_header(location: Location, compression: str | None, sep: str = ",", encoding: str = "utf-8-sig") -> None:
    """Refuse a CSV whose header names a column twice (pandas would silently rename the second 'a' to 'a.1')."""
    from collections import Counter

    with _open_stream(location, location.fs_path) as fh:
        header = pd.read_csv(fh, compression=compression, header=None, nrows=1, dtype=str, sep=sep, encoding=encoding)
        header = header.iloc[0].tolist()
    repeated = [(name, n) for name, n in Counter(header).items() if n > 1]
    if repeated:
        name, n = repeated[0]
        places = [i + 1 for i, h in enumerate(header) if h == name]
        more = f" (and {len(repeated) - 1} more repeated name(s))" if len(repeated) > 1 else ""
        raise LrsweepError(
            f"the header of {location.text!r} names column {name!r} {n} times (columns {places}){more}",
            "give every column its own name in the file",
        )


def sha256(location: Location) -> str:
    """SHA-256 of the data's bytes, streamed: a folder's parts in name order; a .gz file's content decompressed.

    The same rule as for local files, so a table hashes the same wherever it is stored.
    """
    h = hashlib.sha256()
    names = [e["name"] for e in _part_entries(location)] if location.is_dir else [location.fs_path]
    with _reporting(location):
        for name in names:
            with _open_stream(location, name) as raw:
                fh: Any = gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()


def footer_sha256(location: Location, tail: int = 65536) -> str:
    """SHA-256 of the Parquet parts' names, sizes and last ``tail`` bytes (their footers): a fingerprint of a
    table too large to hash whole (reading every byte of a large input costs minutes)."""
    h = hashlib.sha256()
    with _reporting(location):
        if location.is_dir:
            entries = [(e["name"], int(e.get("size") or 0)) for e in _part_entries(location)]
        else:
            entries = [(location.fs_path, int(location.fs.info(location.fs_path).get("size") or 0))]
        for name, size in entries:
            h.update(f"{_base(name)}:{size}:".encode())
            with location.fs.open(name, "rb") as fh:
                fh.seek(max(size - tail, 0))
                h.update(fh.read())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------


def _resolve_local(path: Path, display: str) -> Location:
    if not path.exists():
        raise LrsweepError(
            f"data file {display!r} does not exist", "check dataset.path (relative to the working directory)"
        )
    loc = Location(display, str(path), path, path.is_dir(), fsspec.filesystem("file"), str(path.absolute()))
    if loc.is_dir and not _part_entries(loc):
        raise LrsweepError(
            f"{display!r} is a folder with no Parquet files", "point dataset.path at a CSV or Parquet file"
        )
    return loc


def _file_path(text: str, display: str) -> Path:
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise LrsweepError(
            f"{display!r} does not name a local absolute path",
            "write file:///absolute/path (three slashes), or give the path itself",
        )
    return Path(url2pathname(parts.path))


def _split_credentials(text: str, proto: str, display: str) -> tuple[str, dict[str, str]]:
    """The URL without user:password, and the HTTP headers that authenticate instead."""
    parts = urlsplit(text)
    if "@" not in parts.netloc:
        return text, {}
    if proto not in _HTTP:
        raise LrsweepError(
            f"{display!r} carries credentials in the URI",
            "remove them: " + _CREDENTIALS_FIX.get(_family(proto), "use the filesystem's own credential settings"),
        )
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), {"Authorization": f"Basic {token}"}


def _client_options(proto: str, headers: dict[str, str]) -> dict[str, Any]:
    """Filesystem options: authentication, and limits that make a dead endpoint fail within seconds."""
    if proto in _S3:
        config: dict[str, Any] = {"connect_timeout": 5}
        # botocore's default ("legacy") mode retries a refused connection four times with growing waits;
        # a user's own AWS_MAX_ATTEMPTS / AWS_RETRY_MODE still win, as botocore reads them when this is unset
        if "AWS_MAX_ATTEMPTS" not in os.environ and "AWS_RETRY_MODE" not in os.environ:
            config["retries"] = {"mode": "standard", "total_max_attempts": 3}
        return {"config_kwargs": config}
    if proto in _HTTP:
        import aiohttp

        logging.getLogger("fsspec.http").addFilter(_REDACT_LOG)  # once: a logger keeps one copy of a filter

        # aiohttp's default caps a whole request (a whole download) in total time; bound connecting and
        # silences instead, so a large file may take as long as it needs. aiohttp drops the Authorization
        # header when a redirect leads to another host.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        return {"client_kwargs": {"timeout": timeout, "headers": headers}}
    return {}


class _RedactingFilter(logging.Filter):
    """fsspec's HTTP filesystem logs every URL at DEBUG, query included: mask secret parameters in those lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact_uri(record.getMessage()), None
        if record.exc_info and not record.exc_text:  # a handler prints exc_text when set, in place of exc_info
            record.exc_text = redact_uri(logging.Formatter().formatException(record.exc_info))
        return True


_REDACT_LOG = _RedactingFilter()


def _family(proto: str) -> str:
    return "s3" if proto in _S3 else "gs" if proto in ("gs", "gcs") else "http" if proto in _HTTP else proto


def _not_found(fs: Any, fs_path: str, proto: str, display: str) -> LrsweepError:
    if _family(proto) in ("s3", "gs"):
        bucket = fs_path.split("/", 1)[0]
        try:
            fs.info(bucket)
        except FileNotFoundError:
            return LrsweepError(
                f"bucket {bucket!r} of {display!r} does not exist", "check the bucket name in dataset.path"
            )
        except Exception:  # a bucket one may read from but not list: say what is sure
            pass
    return LrsweepError(f"data file {display!r} does not exist", "check dataset.path")


def _failure(exc: BaseException, proto: str, display: str) -> LrsweepError:
    """One line for an error of fsspec, botocore or aiohttp, told apart by class name so as to import neither."""
    if isinstance(exc, LrsweepError):
        return exc
    exc = _real_error(exc)
    names = {c.__name__ for c in type(exc).__mro__}
    family = _family(proto)
    if isinstance(exc, FileNotFoundError):
        return LrsweepError(f"data file {display!r} does not exist", "check dataset.path")
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        return LrsweepError(f"no AWS credentials found to read {display!r}", _CREDENTIALS_FIX["s3"])
    if "ProfileNotFound" in names:
        profile = getattr(exc, "kwargs", {}).get("profile", "")
        return LrsweepError(
            f"AWS profile {profile!r} is not configured", "fix AWS_PROFILE, or add the profile to ~/.aws"
        )
    status = getattr(exc, "status", None)  # aiohttp's HTTP errors
    if isinstance(exc, PermissionError) or status in (401, 403):
        return LrsweepError(
            f"access to {display!r} was refused" + (f" (HTTP {status})" if status else ""),
            _CREDENTIALS_FIX.get(family, "check the credentials") + ", and that they may read it",
        )
    if names & {"ClientConnectorCertificateError", "SSLCertVerificationError", "SSLError"}:
        return LrsweepError(
            f"the TLS certificate of the server of {display!r} is not trusted",
            "check the URL; for a private CA set SSL_CERT_FILE" + (" or AWS_CA_BUNDLE" if family == "s3" else ""),
        )
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError"}:
        where = _endpoint(exc)
        fix = "check the URL and the network"
        if family == "s3":
            fix = "check AWS_ENDPOINT_URL (or the profile's endpoint_url) and the network"
        return LrsweepError(f"cannot reach the server of {display!r}" + (f" at {where}" if where else ""), fix)
    if status is not None:
        return LrsweepError(f"the server refused {display!r} (HTTP {status})", "check the URL")
    return LrsweepError(f"cannot read {display!r}: {_first_line(exc)}", "check dataset.path and the network")


def _real_error(exc: BaseException) -> BaseException:
    """The error under fsspec's HTTP "not found", which it raises for any failure (refused, 401, no route)."""
    cause = exc.__cause__
    if not isinstance(exc, FileNotFoundError) or cause is None or isinstance(cause, FileNotFoundError):
        return exc
    from_http = type(cause).__module__.startswith("aiohttp") or isinstance(cause, OSError | TimeoutError)
    return cause if from_http and getattr(cause, "status", None) not in (404, 410) else exc


def _endpoint(exc: BaseException) -> str:
    """scheme://host:port that could not be reached, from botocore's or aiohttp's error."""
    url = getattr(exc, "kwargs", {}).get("endpoint_url")
    if url:
        parts = urlsplit(url)
        return redact_uri(f"{parts.scheme}://{parts.netloc}")
    host, port = getattr(exc, "host", None), getattr(exc, "port", None)
    return f"{host}:{port}" if host else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_uri(text.splitlines()[0]) if text else type(exc).__name__


@contextmanager
def _reporting(location: Location) -> Iterator[None]:
    """Turn an I/O error while using ``location`` into one LrsweepError line."""
    try:
        yield
    except LrsweepError:
        raise
    except Exception as exc:
        raise _failure(exc, location.scheme, location.text) from None


def _open_stream(location: Location, name: str) -> Any:
    """A file opened for reading from start to end."""
    if location.scheme in _HTTP:  # a streaming response: needs no support for range requests from the server
        return location.fs.open(name, "rb", block_size=0)
    return location.fs.open(name, "rb")


def _part_entries(location: Location) -> list[dict[str, Any]]:
    if not location.is_dir:
        return []
    with _reporting(location):
        entries = location.fs.ls(location.fs_path, detail=True)
    parts = [e for e in entries if e.get("type") == "file" and fnmatch.fnmatchcase(_base(e["name"]), "*.parquet")]
    return sorted(parts, key=lambda e: _base(e["name"]))


def _base(name: str) -> str:
    return posixpath.basename(name.rstrip("/"))
