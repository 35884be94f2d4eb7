"""A node's copy of its model files from the model store, run in the node's network namespace
(`python -m bench.servers.node_fetch URL BUCKET KEY=PATH...`, credentials in
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): what a storage initializer does on a real
node, so that the bytes cross the node's own (shaped) link, not the harness's loopback.
Prints the bytes written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bench.servers.s3 import S3Endpoint, s3_client


def main(argv: list[str]) -> int:
    url, bucket, *pairs = argv
    endpoint = S3Endpoint(url, url, os.environ["AWS_ACCESS_KEY_ID"],
                          os.environ["AWS_SECRET_ACCESS_KEY"], None)
    client = s3_client(endpoint)
    written = 0
    for pair in pairs:
        key, _, path = pair.partition("=")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        client.download_file(bucket, key, path)
        written += Path(path).stat().st_size
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
