"""Reads an S3 server back with boto3 for Ferry's destination tests.

usage: s3.py ENDPOINT create-bucket BUCKET [ACCESS_KEY_ID SECRET_ACCESS_KEY]
       s3.py ENDPOINT objects BUCKET [ACCESS_KEY_ID SECRET_ACCESS_KEY]
           (prints a JSON list of objects)
       s3.py ENDPOINT uploads BUCKET [ACCESS_KEY_ID SECRET_ACCESS_KEY]
           (prints a JSON list of the keys of unfinished multipart uploads)
       s3.py ENDPOINT create-user NAME
           (an IAM user allowed everything on S3; prints its new access key
           as JSON {"access_key_id", "secret_access_key"})

The keys default to `test`, which a server without authentication accepts.
"""
import hashlib
import json
import sys

import boto3

endpoint, command, bucket = sys.argv[1:4]
key_id, secret = sys.argv[4:6] if len(sys.argv) > 5 else ("test", "test")
session = boto3.Session(
    region_name="us-east-1",
    aws_access_key_id=key_id,
    aws_secret_access_key=secret,
)
s3 = session.client("s3", endpoint_url=endpoint)
if command == "create-user":
    iam = session.client("iam", endpoint_url=endpoint)
    iam.create_user(UserName=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=bucket, PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=bucket)["AccessKey"]
    json.dump({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}, sys.stdout)
elif command == "create-bucket":
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
elif command == "uploads":
    listed = s3.list_multipart_uploads(Bucket=bucket)
    json.dump([u["Key"] for u in listed.get("Uploads", [])], sys.stdout)
else:
    sys.exit(f"unknown command {command}")
