"""AWS calls for the tests' set-up and checks, with boto3 from the moto virtualenv, against
moto's server: reads a JSON list of calls on stdin, `{"service": "lambda", "operation":
"GetFunction", "params": {...}}` each (operation names as in the AWS API), makes them in order,
and prints a JSON list of the answers, `{"ok": ANSWER}` (without `ResponseMetadata`; dates as
ISO 8601 text, bytes as base64) or `{"error": {"code", "message", "status"}}`.

A parameter value `{"$file": PATH}` is the bytes of the file PATH (for `ZipFile`, `Body`).

Environment: `AWS_ENDPOINT_URL` (moto), `AWS_REGION` (a call may name another as "region"), and
any access keys (moto accepts any).
"""

import base64
import datetime
import json
import os
import sys

import boto3
import botocore
from botocore.config import Config


def with_files(value):
    if isinstance(value, dict):
        if set(value) == {"$file"}:
            with open(value["$file"], "rb") as file:
                return file.read()
        return {key: with_files(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_files(item) for item in value]
    return value


def plain(value):
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items() if key != "ResponseMetadata"}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if hasattr(value, "read"):
        return base64.b64encode(value.read()).decode()
    return value


def main():
    answers = []
    clients = {}
    config = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
    for call in json.load(sys.stdin):
        key = (call["service"], call.get("region") or os.environ.get("AWS_REGION"))
        if key not in clients:
            clients[key] = boto3.client(call["service"], region_name=key[1], config=config)
        client = clients[key]
        method = getattr(client, botocore.xform_name(call["operation"]))
        try:
            answers.append({"ok": plain(method(**with_files(call.get("params", {}))))})
        except botocore.exceptions.ClientError as error:
            details = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            answers.append(
                {
                    "error": {
                        "code": details.get("Code"),
                        "message": details.get("Message"),
                        "status": status,
                    }
                }
            )
    json.dump(answers, sys.stdout)


main()
