"""Reads an S3 server back with boto3 for Ferry's destination tests.

usage: s3.py ENDPOINT create-bucket BUCKET
       s3.py ENDPOINT objects BUCKET   (prints a JSON list of objects)
"""
import hashlib
import json
import sys

import boto3

endpoint, command, bucket = sys.argv[1:4]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="test",
    aws_secret_access_key="test",
)
if command == "create-bucket":
    s3.create_bucket(Bucket=bucket)
elif command == "objects":
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=item["Key"])
            body = got["Body"].read()
            found.append({
                "key": item["Key"],
                "size": len(body),
                "etag": got["ETag"].strip('"'),
                "content_type": got.get("ContentType"),
                "storage_class": got.get("StorageClass"),
                "server_side_encryption": got.get("ServerSideEncryption"),
                "metadata": got.get("Metadata", {}),
                "body": body.decode("utf-8") if len(body) <= 1 << 20 else None,
                "sha256": hashlib.sha256(body).hexdigest(),
            })
    json.dump(found, sys.stdout)
else:
    sys.exit(f"unknown command {command}")
