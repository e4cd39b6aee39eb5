"""Objects in an S3-compatible store (MinIO, AWS S3) through boto3, its calls run in a thread (boto3 blocks). A PUT
is atomic in S3: a reader sees the old object or the new one."""

import asyncio
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from core.config import Settings
from core.storage import checked_key


class S3Storage:
    def __init__(self, client: Any, bucket: str):
        self.client, self.bucket = client, bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> "S3Storage":
        secret = settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id or None,
            aws_secret_access_key=secret,
            # Path-style addressing: what MinIO serves without a DNS name per bucket.
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}),
        )
        return cls(client, settings.s3_bucket)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=checked_key(key), Body=data)

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=checked_key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    raise KeyError(key) from None
                raise
            return response["Body"].read()

        return await asyncio.to_thread(read)

    async def delete(self, key: str) -> None:  # S3 answers a delete of a missing key with success
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=checked_key(key))

    async def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=checked_key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                    return False
                raise
            return True

        return await asyncio.to_thread(head)

    async def keys_older_than(self, prefix: str, before: datetime) -> list[str]:
        def scan() -> list[str]:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/"
            )
            return [item["Key"] for page in pages for item in page.get("Contents", []) if item["LastModified"] < before]

        return await asyncio.to_thread(scan)
