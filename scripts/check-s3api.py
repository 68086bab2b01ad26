#!/usr/bin/env python3
"""Check the S3 API (Swift's s3api) of a Swift that scripts/start-saio.sh started, with boto3.

    eval "$(bash scripts/start-saio.sh DIR)"
    .venv/bin/python scripts/check-s3api.py      # needs boto3 (pip install boto3)

Reads S3_ENDPOINT_URL, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and S3_REGION. The client is
the one an S3 provider should use against it: SigV4, path-style addressing, and checksums
only when an operation requires them. Checks create bucket, put, get, list, delete and a
multipart upload, then prints how s3api answers a missing key, a missing bucket and a PUT
asking for server-side encryption. Exits 1 if a check fails.
"""
import hashlib
import os
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["S3_ENDPOINT_URL"],
        aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required",
                      retries={"max_attempts": 1}),
    )


def error(call):
    """Run call; return (HTTP status, error code, message) of the ClientError it raises."""
    try:
        call()
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"].get("Code"),
                e.response["Error"].get("Message"))
    return None


def main() -> int:
    s3 = client()
    bucket = "check-s3api-%s" % uuid.uuid4().hex[:8]
    failures = []

    def check(what, ok, detail=""):
        print("%s %s%s" % ("ok  " if ok else "FAIL", what, " (%s)" % detail if detail else ""))
        if not ok:
            failures.append(what)

    s3.create_bucket(Bucket=bucket)
    try:
        check("bucket listed", bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]])
        body = b"hello s3api\n" * 1000
        put = s3.put_object(Bucket=bucket, Key="dir/obj", Body=body, Metadata={"k": "v"})
        md5 = hashlib.md5(body).hexdigest()
        check("simple PUT ETag is the md5", put["ETag"].strip('"') == md5, put["ETag"])
        got = s3.get_object(Bucket=bucket, Key="dir/obj")
        check("GET returns the bytes and metadata",
              got["Body"].read() == body and got["Metadata"] == {"k": "v"}, got["Metadata"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dir/").get("Contents", [])]
        check("list_objects_v2", keys == ["dir/obj"], keys)

        part = 5 * 1024 * 1024   # S3's minimum part size, except for the last part
        data = os.urandom(2 * part + 12345)
        mpu = s3.create_multipart_upload(Bucket=bucket, Key="big")
        parts = []
        for n, off in enumerate(range(0, len(data), part), 1):
            r = s3.upload_part(Bucket=bucket, Key="big", UploadId=mpu["UploadId"], PartNumber=n,
                               Body=data[off:off + part])
            parts.append({"PartNumber": n, "ETag": r["ETag"]})
        done = s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=mpu["UploadId"],
                                            MultipartUpload={"Parts": parts})
        check("multipart upload (%d parts) reads back" % len(parts),
              s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data, done["ETag"])

        print("GET missing key:    %s" % (error(lambda: s3.get_object(Bucket=bucket, Key="nope")),))
        print("HEAD missing key:   %s" % (error(lambda: s3.head_object(Bucket=bucket, Key="nope")),))
        print("GET missing bucket: %s" % (error(lambda: s3.get_object(Bucket=bucket + "-x", Key="k")),))
        print("list missing bucket: %s" % (error(lambda: s3.list_objects_v2(Bucket=bucket + "-x")),))
        sse = error(lambda: s3.put_object(Bucket=bucket, Key="sse", Body=b"x", ServerSideEncryption="AES256"))
        print("PUT with ServerSideEncryption=AES256: %s" % (sse or "accepted",))
        if sse is None:
            h = s3.head_object(Bucket=bucket, Key="sse")
            print("  HEAD of it: ServerSideEncryption=%s" % h.get("ServerSideEncryption"))

        for key in ("dir/obj", "big", "sse"):
            s3.delete_object(Bucket=bucket, Key=key)
        left = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
        check("delete_object", left == 0, "%d left" % left)
    finally:
        for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])
        s3.delete_bucket(Bucket=bucket)
    check("delete_bucket", bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]])
    print("passed" if not failures else "FAILED: %s" % ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
