"""``--secret-file`` / ``$ASK2LIVE_SECRET_FILE``: the token signing secret read from a file,
so that it is not on the command line for ``ps`` to show. Real ``ask2live serve``
processes (tests/serve.py): a token issued by a process given the file is accepted by one
given the same text with ``--secret``, and refused by one with another secret.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EMBEDDED, PRODUCTION, SETUPS
from serve import ServeProcess, clean_env, http_json

SECRET_TEXT = "a-secret-kept-in-a-file"
PASSWORD = "correct horse battery"


def token_from(server: ServeProcess, username: str) -> str:
    assert http_json("POST", server.url + "/api/users", {"username": username, "password": PASSWORD})[0] == 201
    status, body = http_json("POST", server.url + "/api/login", {"username": username, "password": PASSWORD})
    assert status == 200, body
    return body["token"]


def write_secret(path: Path) -> Path:
    path.write_text(SECRET_TEXT + "\n")  # a trailing newline, as editors and `echo` leave
    path.chmod(0o600)
    return path


def sibling(first: ServeProcess, *args: str, name: str, tmp: Path, env: dict[str, str] | None = None) -> ServeProcess:
    """Another process of ``first``'s deployment (the same database), with ``args``."""
    if first.setup == PRODUCTION:
        return ServeProcess(PRODUCTION, *args, tmp=tmp, name=name, like=first, env=env)
    return ServeProcess(EMBEDDED, *args, tmp=tmp, name=name, data_dir=first.data_dir, env=env)


@pytest.mark.parametrize("setup", SETUPS)
def test_the_secret_file_signs_tokens_and_stays_off_the_command_line(setup, tmp_path):
    secret_file = write_secret(tmp_path / "secret.txt")
    # On production, ServeProcess also sets $ASK2LIVE_SECRET: the flag wins over it.
    first = ServeProcess(setup, "--secret-file", str(secret_file), tmp=tmp_path, name="first")
    others: list[ServeProcess] = []
    try:
        token = token_from(first, "filer")
        assert SECRET_TEXT.encode() not in Path(f"/proc/{first.proc.pid}/cmdline").read_bytes()
        assert not (first.data_dir / "secret").exists()  # none generated
        same = sibling(first, "--secret", SECRET_TEXT, name="same", tmp=tmp_path)
        others.append(same)
        assert http_json("GET", same.url + "/api/me", token=token)[0] == 200
        other = sibling(first, "--secret", "another-secret", name="other", tmp=tmp_path)
        others.append(other)
        assert http_json("GET", other.url + "/api/me", token=token)[0] == 401
    finally:
        for process in others:
            process.stop()
        first.stop()  # last: on production it owns the database


def test_the_secret_file_variable_works_like_the_flag(tmp_path):
    secret_file = write_secret(tmp_path / "secret.txt")
    first = ServeProcess(EMBEDDED, tmp=tmp_path, name="first", env={"ASK2LIVE_SECRET_FILE": str(secret_file)})
    same = None
    try:
        token = token_from(first, "variable")
        same = sibling(first, "--secret", SECRET_TEXT, name="same", tmp=tmp_path)
        assert http_json("GET", same.url + "/api/me", token=token)[0] == 200
    finally:
        if same is not None:
            same.stop()
        first.stop()


def serve_exit(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ask2live", "serve", "--port", "1", "--data-dir",
                           str(tmp_path / "data"), *args], env=clean_env(**(env or {})), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("args, env, message", [
    (["--secret-file", "/nonexistent/secret"], {}, "--secret-file /nonexistent/secret: No such file or directory"),
    (["--secret-file", "{empty}"], {}, "is empty"),
    (["--secret-file", "{file}", "--secret", "x"], {}, "give one of --secret-file and --secret, not both"),
    ([], {"ASK2LIVE_SECRET_FILE": "{file}", "ASK2LIVE_SECRET": "x"},
     "give one of ASK2LIVE_SECRET_FILE and ASK2LIVE_SECRET, not both"),
], ids=["missing", "empty", "two-flags", "two-variables"])
def test_an_unusable_or_ambiguous_secret_stops_the_start(tmp_path, args, env, message):
    names = {"file": str(write_secret(tmp_path / "secret.txt")), "empty": str(tmp_path / "empty.txt")}
    (tmp_path / "empty.txt").write_text("\n")
    result = serve_exit(tmp_path, *[a.format(**names) for a in args], env={k: v.format(**names) for k, v in env.items()})
    assert result.returncode == 2 and message in result.stderr, result
    assert not (tmp_path / "data" / "secret").exists()
