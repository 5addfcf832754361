"""Generated requests against the OpenAPI document: Schemathesis (its command line, `st
run`) sends requests made from /api/openapi.json to a real `ask2live serve` on each set-up
and checks every answer against the document (status, headers, content type, body
schema), that the document's valid requests are taken and its invalid ones refused, and
that undeclared methods get a 405 with Allow.

Bounded and repeatable: a fixed seed and a fixed number of examples per operation, so
that a run takes well under a minute per set-up and a failure reproduces. The output, with
a curl command per failure, is in the assertion message.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from conftest import SETUPS
from serve import ServeProcess, clean_env

CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
# A longer hunt: ASK2LIVE_ST_EXAMPLES=200 ASK2LIVE_ST_SEED=7 ./scripts/test tests/test_schemathesis.py
SEED = int(os.environ.get("ASK2LIVE_ST_SEED", "20261201"))
# Examples per operation: about 30 s per set-up on an idle two-core machine (the coverage
# phase, a fixed set of boundary and wrong-type cases, is half of it).
MAX_EXAMPLES = int(os.environ.get("ASK2LIVE_ST_EXAMPLES", "10"))
TIMEOUT_SECONDS = int(os.environ.get("ASK2LIVE_ST_TIMEOUT", "240"))
PASSWORD = "correct horse battery"


def sign_up_and_log_in(url: str, username: str) -> str:
    def post(path: str, body: dict) -> dict:
        request = urllib.request.Request(url + path, data=orjson.dumps(body), method="POST")
        with urllib.request.urlopen(request, timeout=10) as r:
            return orjson.loads(r.read())

    post("/api/users", {"username": username, "password": PASSWORD})
    return post("/api/login", {"username": username, "password": PASSWORD})["token"]


@pytest.mark.parametrize("setup", SETUPS)
def test_the_server_answers_as_its_openapi_document_says(setup, tmp_path):
    # Cheap hashes (generated sign-ups and logins are many), and throttles high enough that
    # generated requests reach the handlers, low enough that 429s are answered and checked.
    # Agora credentials (made up: tokens are signed locally) so that voice tokens are
    # answered rather than 503 voice_not_configured.
    server = ServeProcess(setup, "--scrypt-n", "256", "--signup-limit", "1000", "--login-address-limit", "1000",
                          "--agora-app-id", secrets.token_hex(16), "--agora-app-certificate", secrets.token_hex(16),
                          tmp=tmp_path)
    try:
        env = clean_env(ASK2LIVE_ST_TOKEN=sign_up_and_log_in(server.url, "schemathesis"),
                        ASK2LIVE_ST_LOGOUT_TOKEN=sign_up_and_log_in(server.url, "schemathesis_logout"),
                        PYTHONHASHSEED="0")
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color", "run",
             server.url + "/api/openapi.json", "--seed", str(SEED), "--max-examples", str(MAX_EXAMPLES),
             "--workers", "1",  # more workers: CPython 3.11 can fail compiling in threads
             "--no-shrink", "--output-truncate", "false", "--warnings", "off"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    finally:
        server.stop()
    assert result.returncode == 0, f"schemathesis found mismatches on {setup}:\n{result.stdout[-20000:]}\n{result.stderr[-3000:]}"
