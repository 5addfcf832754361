"""The web client's state module (ask2live/static/js/session-state.js), tested in Node on
frames recorded from a real server (tests/js/), those recordings kept true to the server,
and the README's reconnect back-off kept true to the client.

The Node tests need ``node`` (Debian's nodejs is enough; .ci/run installs it when missing,
elsewhere the test skips). The recordings are checked against a fresh recording from this
checkout's server: the same steps, frames of the same shapes. When the protocol changes on
purpose, record again with ``.venv/bin/python tests/js/record.py`` and run the Node tests.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
JS_TESTS = ROOT / "tests" / "js"
NODE = shutil.which("node") or shutil.which("nodejs")
# Values that are the same in every recording (what happened); every other value is kept
# as its type only (ids, times, tokens and connection ids differ from run to run).
KEPT_VALUES = {"type", "action", "code", "role", "text", "value", "status", "resumed", "recovered", "anonymous",
               "answered", "hidden", "pinned", "deleted", "mine", "voted", "votes", "username", "configured",
               "client_msg_id", "named"}


@pytest.mark.skipif(NODE is None, reason="needs Node.js (apt-get install nodejs)")
def test_the_state_module_passes_its_node_tests():
    files = sorted(JS_TESTS.glob("*.test.mjs"))
    assert files, f"no *.test.mjs in {JS_TESTS}"
    result = subprocess.run([NODE, "--test", *map(str, files)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"


@pytest.mark.skipif(NODE is None, reason="needs Node.js (apt-get install nodejs)")
def test_the_readme_states_the_reconnect_back_off_the_client_uses():
    """The README's sentence on reconnecting, from the client's own reconnectDelay()."""
    script = ("import('./ask2live/static/js/room.js').then((room) => console.log(JSON.stringify("
              "[1, 2, 3, 60].map((n) => [room.reconnectDelay(n, () => 0), room.reconnectDelay(n, () => 1)]))))")
    result = subprocess.run([NODE, "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    first, second, third, last = (f"{low / 1000:g}–{high / 1000:g} s" for low, high in json.loads(result.stdout))
    sentence = f"({first}, then {second}, {third}, doubling up to {last})"
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert sentence in readme, f"the README should say {sentence!r}"


def shape(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if key in KEPT_VALUES:
        return value
    return type(value).__name__


def outline(steps: list[dict]) -> dict[str, list]:
    """A page's recording, by kind of step (a REST answer and a frame it causes may arrive
    in either order): what it received and sent, its REST calls, its connects."""
    kinds: dict[str, list] = {"receive": [], "send": [], "rest": [], "connect": []}
    for step in steps:
        if "receive" in step:
            frame = step["receive"]
            if frame["type"] == "welcome" and not frame["recovered"]:
                # The room's last events, some of them maybe read back from the cold store
                # (how many, and in what form, depends on when the write-behind ran).
                frame = {**frame, "history": sorted({event["type"] for event in frame["history"]})}
            kinds["receive"].append(shape(frame))
        elif "send" in step:
            kinds["send"].append(shape(step["send"]))
        elif "rest" in step:
            kinds["rest"].append([step["rest"], step.get("body"), step["status"], shape(step["answer"])])
        elif "connect" in step:
            kinds["connect"].append(shape(step["connect"]))
    return kinds


def test_the_recorded_frames_are_what_the_server_sends_now():
    spec = importlib.util.spec_from_file_location("record_fixtures", JS_TESTS / "record.py")
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    fresh = record.recorded()
    assert sorted(fresh) == sorted(p.name for p in record.FIXTURES.glob("*.json"))
    for name, fixture in fresh.items():
        kept = json.loads((record.FIXTURES / name).read_text(encoding="utf-8"))
        assert kept["about"] == fixture["about"], name
        was, now = outline(kept["steps"]), outline(fixture["steps"])
        for kind in was:
            assert was[kind] == now[kind], \
                f"{name}: the {kind} steps differ from a fresh recording; record again (tests/js/record.py)"
