"""The harness's own servers, each in a container of the engine: the S3 server, the OCI
registry, and the shaped link in front of them."""
