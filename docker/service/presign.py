"""A presigned GET URL of an S3 object (Signature Version 4, query-string authentication),
without boto3 where the credentials are keys (mmap-lazy's start).

Why not boto3's generate_presigned_url: importing boto3 and making a client cost 0.45-0.55 s
of CPU on this machine's host venv (import 0.35-0.44 s, client 0.09-0.12 s), and the service
measured 0.34 s of it before its first ranged GET at 100 Mbit: a tenth of the 3 s that
mmap-lazy has for its first answer, spent before it asks anything. Signing a URL is a few
HMACs (AWS's "Authenticating Requests: Using Query Parameters"); credentials that are not keys
(an instance role, a web identity) still go through boto3, which knows how to find them.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import urllib.parse

from .s3_download import credentials_of

ALGORITHM = "AWS4-HMAC-SHA256"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _encode(text: str, safe: str = "") -> str:
    """RFC 3986 percent-encoding, as SigV4 wants it (unreserved characters kept)."""
    return urllib.parse.quote(text, safe="-_.~" + safe)


def signed_url(endpoint: str, bucket: str, key: str, access_key: str, secret_key: str, *,
               region: str, expires_s: int, session_token: str = "",
               now: datetime.datetime | None = None) -> str:
    """The path-style URL of s3://bucket/key at `endpoint`, valid for GET for `expires_s`."""
    parts = urllib.parse.urlsplit(endpoint)
    when = now or datetime.datetime.now(datetime.UTC)
    stamp, day = when.strftime("%Y%m%dT%H%M%SZ"), when.strftime("%Y%m%d")
    scope = f"{day}/{region}/s3/aws4_request"
    path = _encode(f"{parts.path.rstrip('/')}/{bucket}/{key}", safe="/")
    query = {"X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": f"{access_key}/{scope}",
             "X-Amz-Date": stamp, "X-Amz-Expires": str(expires_s),
             "X-Amz-SignedHeaders": "host"}
    if session_token:
        query["X-Amz-Security-Token"] = session_token
    canonical_query = "&".join(f"{_encode(name)}={_encode(value)}"
                               for name, value in sorted(query.items()))
    canonical_request = "\n".join(["GET", path, canonical_query, f"host:{parts.netloc}", "",
                                   "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join([ALGORITHM, stamp, scope,
                         hashlib.sha256(canonical_request.encode()).hexdigest()])
    signing_key = b"AWS4" + secret_key.encode()
    for part in (day, region, "s3", "aws4_request"):
        signing_key = _hmac(signing_key, part)
    signature = _hmac(signing_key, to_sign).hex()
    return (f"{parts.scheme}://{parts.netloc}{path}?{canonical_query}"
            f"&X-Amz-Signature={signature}")


def presigned_get(endpoint: str, bucket: str, key: str, credentials_file: str, *,
                  expires_s: int) -> str:
    """A GET URL of the object: signed here with the credentials file's keys or AWS_*
    variables' keys, by boto3 where there are none (its other credential sources)."""
    region = os.environ.get("AWS_REGION", "us-east-1")
    keys = credentials_of(credentials_file)
    access = keys.get("aws_access_key_id") or os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret = keys.get("aws_secret_access_key") or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if access and secret and endpoint:
        token = "" if keys else os.environ.get("AWS_SESSION_TOKEN", "")
        return signed_url(endpoint, bucket, key, access, secret, region=region,
                          expires_s=expires_s, session_token=token)
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=endpoint or None, region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}), **keys)
    url: str = client.generate_presigned_url("get_object", ExpiresIn=expires_s,
                                             Params={"Bucket": bucket, "Key": key})
    return url
