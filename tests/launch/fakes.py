"""Fakes for the launch tests: planted credentials, the moto server's handle (clients, recording, reset), and
the composed overrides most tests start from."""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "AKIALAUNCHFAKE000KEY"  # planted: must appear in nothing a launch prints, writes or sends as data
SECRET_KEY = "LAUNCH-FAKE-SECRET-4242"
MLFLOW_PASSWORD = "LAUNCH-FAKE-MLFLOW-PW-77"
PLANTED = (ACCESS_KEY, SECRET_KEY, MLFLOW_PASSWORD)
BUCKET = "lrsweep-launch"
S3_URI = f"s3://{BUCKET}/sweeps"
TRACKING = f"https://lead:{MLFLOW_PASSWORD}@mlflow.example.com"
REGION = "us-east-1"


@dataclass
class Moto:
    """The running moto server: clients with the planted keys, its recording, its state reset."""

    endpoint: str
    recording_file: Path

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )  # fmt: skip

    def post(self, path: str) -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def reset(self) -> None:
        self.post("/moto-api/reset")
        self.post("/moto-api/recorder/reset-recording")

    def requests(self) -> list[dict[str, Any]]:
        """Every request received since the reset: {target, method, url, body (bytes)}."""
        out = []
        for line in self.recording_file.read_text().splitlines():
            entry = json.loads(line)
            body = entry.get("body") or ""
            raw = base64.b64decode(body) if entry.get("body_encoded") else body.encode()
            headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
            out.append({"target": headers.get("x-amz-target", ""), "method": entry["method"], "url": entry["url"],
                        "body": raw})  # fmt: skip
        return out

    def emr_calls(self, action: str) -> list[dict[str, Any]]:
        """The JSON bodies of the EMR requests of one action (e.g. RunJobFlow), as received."""
        return [json.loads(r["body"]) for r in self.requests() if r["target"] == f"ElasticMapReduce.{action}"]

    def objects(self, bucket: str = BUCKET) -> dict[str, bytes]:
        s3 = self.client("s3")
        listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


EMR = ("cluster=emr", "backend=spark", f"cluster.s3_uri={S3_URI}", f"tracking.uri={TRACKING}", "plan.run_id=plan123")


def leaks(*texts: str | bytes) -> list[str]:
    """The planted credentials found in any of ``texts``."""
    blob = b"\n".join(t.encode() if isinstance(t, str) else t for t in texts)
    return [p for p in PLANTED if p.encode() in blob]
