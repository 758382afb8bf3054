"""Schemathesis hooks for Sluice's contract test (tests/contract.rs).

Authentication is dynamic because the run itself ends sessions: generated calls of
POST /api/auth/logout, /logout-all and /change-password end the session of the token they
carry. A 401 makes schemathesis log in again (``retry_on``), so the rest of the run is not
answered 401 throughout. The credentials come from the test, in CONTRACT_* variables of the
schemathesis process.
"""

import json
import os

import requests
import schemathesis

BASE = os.environ["CONTRACT_BASE_URL"].rstrip("/")
USERNAME = os.environ["CONTRACT_USERNAME"]
PASSWORD = os.environ["CONTRACT_PASSWORD"]


@schemathesis.auth(refresh_interval=600, retry_on=[401])
class AdminToken:
    """An admin's access token, so every operation can be reached."""

    def get(self, case, context):
        answer = requests.post(
            f"{BASE}/api/auth/login",
            json={"username": USERNAME, "password": PASSWORD},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """NDJSON bodies are described as text; anything else generated goes one JSON per line."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    lines = value if isinstance(value, list) else [value]
    return "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
