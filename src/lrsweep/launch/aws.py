"""boto3 for the launch: clients that fail fast, and AWS errors as one line without a credential in it.

boto3 (the ``aws`` extra) is imported only here and only when a launch talks to AWS, with one line saying what to
install when it is missing. Clients find credentials, region and endpoint the standard way (environment
variables such as AWS_ACCESS_KEY_ID and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_EMR, AWS_PROFILE
and ~/.aws, instance roles); this module never reads a credential itself, except to mask its value in messages.
"""

from __future__ import annotations

import os
from typing import Any

from lrsweep.errors import LrsweepError
from lrsweep.redact import REDACTED, redact_uri

__all__ = ["client", "aws_error", "scrub", "s3_put", "s3_get", "check_bucket"]

_INSTALL = "pip install 'lrsweep[aws]'"
_CREDENTIALS_FIX = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws)"
_REFUSED_CREDENTIALS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
)
_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise LrsweepError("lrsweep launch needs boto3, which is not installed", _INSTALL) from None
    return boto3


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client that gives up within seconds on an endpoint that does not answer."""
    boto3 = _boto3()
    from botocore.config import Config

    options: dict[str, Any] = {"connect_timeout": 5, "read_timeout": 60}
    # botocore's default ("legacy") mode retries a refused connection four times with growing waits; a user's own
    # AWS_MAX_ATTEMPTS / AWS_RETRY_MODE still win, as botocore reads them when this is unset
    if "AWS_MAX_ATTEMPTS" not in os.environ and "AWS_RETRY_MODE" not in os.environ:
        options["retries"] = {"mode": "standard", "total_max_attempts": 3}
    try:
        return boto3.session.Session().client(service, region_name=region or None, config=Config(**options))
    except Exception as exc:
        raise aws_error(exc, f"cannot set up the AWS {service} client") from None


def scrub(text: str) -> str:
    """``text`` with URI passwords and the values of the AWS credential variables masked."""
    text = redact_uri(text)
    for name in _CREDENTIAL_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text


def aws_error(exc: BaseException, doing: str, not_found: LrsweepError | None = None) -> LrsweepError:
    """One line for a botocore error raised while ``doing`` (e.g. "cannot write s3://b/k").

    ``not_found``: the line for a 404 / NoSuchBucket / unknown-resource answer, which only the caller can word.
    """
    if isinstance(exc, LrsweepError):
        return exc
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"}:
        return LrsweepError(f"{doing}: no AWS credentials found", _CREDENTIALS_FIX)
    if "ProfileNotFound" in names:
        return LrsweepError(f"{doing}: the AWS profile is not configured", "fix AWS_PROFILE, or add it to ~/.aws")
    if "NoRegionError" in names:
        return LrsweepError(f"{doing}: no AWS region given", "set cluster.region (or AWS_DEFAULT_REGION)")
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError"}:
        url = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        where = f" at {scrub(url)}" if url else ""
        return LrsweepError(
            f"{doing}: cannot reach AWS{where}", "check the network, and AWS_ENDPOINT_URL if you set one"
        )
    if "ClientError" in names:
        error = getattr(exc, "response", {}).get("Error", {})
        code = str(error.get("Code", ""))
        message = scrub(" ".join(str(error.get("Message", "")).split()))
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        if not_found is not None and (code in ("404", "NoSuchBucket", "NoSuchKey") or status == 404):
            return not_found
        if code in _REFUSED_CREDENTIALS:
            return LrsweepError(f"{doing}: AWS refused the credentials ({code})", _CREDENTIALS_FIX)
        if code in ("403", "AccessDenied", "AccessDeniedException") or status == 403:
            return LrsweepError(f"{doing}: access denied", "use credentials allowed to do it (an IAM policy)")
        detail = f"{code}: {message}" if message else code or "an error"
        return LrsweepError(f"{doing}: AWS answered {detail}", "check the cluster.* settings named there")
    if "ParamValidationError" in names:
        return LrsweepError(f"{doing}: {scrub(' '.join(str(exc).split()))}", "check the cluster.* settings")
    return LrsweepError(f"{doing}: {type(exc).__name__}: {scrub(' '.join(str(exc).split()))[:300]}")


def _no_bucket(bucket: str) -> LrsweepError:
    return LrsweepError(
        f"S3 bucket {bucket!r} (cluster.s3_uri) does not exist",
        f"create it (aws s3 mb s3://{bucket}) or point cluster.s3_uri at a bucket you own",
    )


def check_bucket(s3: Any, bucket: str) -> None:
    """Refuse a missing or unreadable bucket before anything is built or written."""
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:
        raise aws_error(exc, f"cannot use S3 bucket {bucket!r}", not_found=_no_bucket(bucket)) from None


def s3_put(s3: Any, uri: str, body: bytes) -> None:
    from lrsweep.launch.staging import split_s3_uri

    bucket, key = split_s3_uri(uri)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    except Exception as exc:
        raise aws_error(exc, f"cannot write {uri}", not_found=_no_bucket(bucket)) from None


def s3_get(s3: Any, uri: str) -> bytes:
    from lrsweep.launch.staging import split_s3_uri

    bucket, key = split_s3_uri(uri)
    missing = LrsweepError(f"{uri} does not exist", "launch again (it stages the objects first)")
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as exc:
        raise aws_error(exc, f"cannot read {uri}", not_found=missing) from None
    return body
