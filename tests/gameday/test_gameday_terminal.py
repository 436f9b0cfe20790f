"""The interactive prompt in a real terminal: the game day runs on a pty, the operator
reads the manual step's prompt there and confirms it with Enter (a note typed first)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time

from mpac_drill import PROJECT_ROOT

PROMPT = b"press Enter"
DELAY_S = 1.5


def _read_until(fd: int, needle: bytes, seen: bytearray, timeout: float) -> bool:
    deadline = time.time() + timeout
    while needle not in seen and time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return needle in seen
    return needle in seen


def test_enter_in_the_terminal_confirms_the_manual_step(gameday_target, tmp_path):
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from mpac_drill.cli import main; sys.exit(main())",
            "gameday",
            "region-failover",
            "--manual",
            "1",
            "--target",
            str(gameday_target.path),
            "--runs-dir",
            str(tmp_path),
            "--users",
            "1",
        ],  # fmt: skip
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    os.close(follower)
    seen = bytearray()
    try:
        assert _read_until(leader, PROMPT, seen, 240), seen[-2000:].decode(errors="replace")
        shown = time.time()
        time.sleep(DELAY_S)
        os.write(leader, b"declared P0 on the bridge\r")  # Enter, as a terminal sends it
        entered = time.time()
        _read_until(leader, b"run folder:", seen, 300)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
        os.close(leader)
    text = seen.decode(errors="replace")
    assert code == 0, text[-3000:]
    (result_path,) = tmp_path.glob("*/result.json")
    g = json.loads(result_path.read_text())["gameday"]
    step = g["steps"][0]
    assert step["manual"] is True and step["who"].endswith(os.uname().nodename)
    assert step["notes"] == ["declared P0 on the bridge"]
    # people time: from the prompt on the screen to Enter (the test saw the prompt a little
    # after it was shown, so the measured time is at least the wait)
    assert DELAY_S - 0.05 <= step["people_s"] <= (entered - shown) + 1.0, step
    assert [s["manual"] for s in g["steps"][1:]] == [False] * 6
    assert all(s["who"] == "harness" for s in g["steps"][1:])
