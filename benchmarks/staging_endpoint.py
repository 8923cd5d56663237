"""A local S3 + DynamoDB endpoint, just enough for `populator import` (benchmarks/staging.py).

`python benchmarks/staging_endpoint.py` binds a free loopback port and prints it on its first
stdout line. S3 (path-style): multipart uploads are created, their parts read and discarded
(counted), completed and aborted; the job's marker object is taken; every listing is empty.
DynamoDB: `DescribeTable` is `ResourceNotFoundException` (the table is new), `ImportTable` and
`DescribeImport` a completed import, anything else success. `GET /__stats`: parts, bytes,
completed and aborted uploads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
import zlib
from typing import Any

from aiohttp import web


def _xml(body: str) -> Any:
    return web.Response(
        body=f'<?xml version="1.0" encoding="UTF-8"?>\n{body}'.encode(), content_type="application/xml"
    )


def _dynamodb(document: Any, status: int = 200) -> Any:
    body = json.dumps(document).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amz-crc32": str(zlib.crc32(body))}
    return web.Response(status=status, body=body, headers=headers)


def serve() -> None:
    """Run the endpoint until terminated."""
    stats = {"parts": 0, "bytes": 0, "completed": 0, "aborted": 0}
    completed_import = {
        "ImportArn": "arn:aws:dynamodb:us-east-1:123456789012:table/bench/import/0123456789abcdef",
        "ImportStatus": "COMPLETED",
        "ErrorCount": 0,
        "ProcessedItemCount": 0,
        "ImportedItemCount": 0,
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.path == "/__stats":
            return web.json_response(stats)
        target = request.headers.get("X-Amz-Target", "")
        if target:
            await request.read()
            operation = target.rpartition(".")[2]
            if operation == "DescribeTable":
                error = "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"
                return _dynamodb({"__type": error, "message": "Requested resource not found"}, 400)
            if operation in ("ImportTable", "DescribeImport"):
                return _dynamodb({"ImportTableDescription": completed_import})
            return _dynamodb({})
        query = request.query
        bucket, _, key = request.path.lstrip("/").partition("/")
        if request.method == "PUT" and "uploadId" in query:
            size = 0
            async for chunk in request.content.iter_any():
                size += len(chunk)
            stats["parts"] += 1
            stats["bytes"] += size
            return web.Response(headers={"ETag": f'"{uuid.uuid4().hex}"'})
        if request.method == "POST" and "uploads" in query:
            upload = uuid.uuid4().hex
            return _xml(
                f"<InitiateMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                f"<UploadId>{upload}</UploadId></InitiateMultipartUploadResult>"
            )
        await request.read()
        if request.method == "POST" and "uploadId" in query:
            stats["completed"] += 1
            return _xml(
                f"<CompleteMultipartUploadResult><Bucket>{bucket}</Bucket><Key>{key}</Key>"
                f'<ETag>"{uuid.uuid4().hex}-1"</ETag></CompleteMultipartUploadResult>'
            )
        if request.method == "DELETE":
            stats["aborted"] += "uploadId" in query
            return web.Response(status=204)
        if request.method == "GET" and "uploads" in query:
            return _xml(f"<ListMultipartUploadsResult><Bucket>{bucket}</Bucket></ListMultipartUploadsResult>")
        if request.method == "GET" and not key:
            prefix = query.get("prefix", "")
            return _xml(
                f"<ListBucketResult><Name>{bucket}</Name><Prefix>{prefix}</Prefix><KeyCount>0</KeyCount>"
                "<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>"
            )
        return web.Response(headers={"ETag": f'"{uuid.uuid4().hex}"'})  # PutObject (the marker) and the rest

    async def main() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    argparse.ArgumentParser(description="A local S3 + DynamoDB endpoint for staging benchmarks.").parse_args()
    serve()
