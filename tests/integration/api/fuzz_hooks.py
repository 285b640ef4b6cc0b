"""Loaded by schemathesis in the contract fuzz (SCHEMATHESIS_HOOKS): an uploaded file's part is sent
as the type the document names for it, and schemathesis knows how to send text/csv only. The other
two formats go as the bytes they were generated as."""

import schemathesis

schemathesis.serializer.alias(
    ["application/jsonl", "application/vnd.apache.parquet"], "application/octet-stream"
)
