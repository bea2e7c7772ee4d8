"""Progress: bars on a terminal (checked in a pseudo-terminal), log lines elsewhere."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
import time

import pytest

from neuromorpho_fetch.progress import Counters, ProgressDisplay, ProgressEvent, progress_enabled
from neuromorpho_fetch.report import MirrorReport

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    from dataclasses import replace
    from tqdm.contrib.logging import logging_redirect_tqdm
    from neuromorpho_fetch.progress import Counters, ProgressDisplay, ProgressEvent, progress_enabled
    logging.basicConfig(level=logging.INFO, format="LOG %(message)s")
    print("tty:", progress_enabled(False), progress_enabled(True), file=sys.stderr)
    display = ProgressDisplay(bars=progress_enabled(False))
    c = Counters()
    with logging_redirect_tqdm():
        for i in range(40):
            c = replace(c, neurons=c.neurons + 1, files=c.files + 1)
            display(ProgressEvent("listed", c)); display(ProgressEvent("planned", c))
            c = replace(c, downloaded=c.downloaded + 1, bytes=c.bytes + 1000)
            display(ProgressEvent("downloaded", c))
            if i == 20:
                c = replace(c, retries=c.retries + 1)
                display(ProgressEvent("retry", c))
                logging.getLogger("x").warning("a log line in the middle")
        display(ProgressEvent("finished", c))
    """
)


def run_in_pty(code: str) -> str:
    """Run ``code`` with stdin/stdout/stderr on a pseudo-terminal and return everything it wrote."""
    master, slave = pty.openpty()
    # A fresh pty is 0x0; give it the size of a real terminal window.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def test_bars_in_a_pseudo_terminal_and_log_lines_do_not_tear_them() -> None:
    out = run_in_pty(SCRIPT)
    assert "tty: True False" in out  # a terminal turns bars on; --no-progress turns them off
    assert "neurons listed" in out and "files" in out and "bytes" in out
    assert "retries=1" in out
    assert "40/40" in out
    # The log line starts on a line of its own: tqdm.write cleared the bars first.
    lines = out.replace("\r\n", "\n").split("\n")
    log_lines = [line for line in lines if "a log line in the middle" in line]
    assert log_lines, out
    for line in log_lines:
        # What the terminal finally shows on that row: the last carriage-return segment, no escapes.
        shown = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).split("\r")[-1]
        assert shown == "LOG a log line in the middle", repr(line)


def test_not_a_terminal_means_no_bars_but_periodic_lines(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    assert progress_enabled(False, stream) is False
    display = ProgressDisplay(bars=False, log_interval=0.0, stream=stream)
    c = Counters(neurons=3, files=3, downloaded=2, failed=1, bytes=2048)
    with caplog.at_level(logging.INFO, logger="neuromorpho_fetch.progress"):
        display(ProgressEvent("downloaded", c))
        display(ProgressEvent("finished", c, report=MirrorReport(downloaded=2)))
    assert stream.getvalue() == ""
    assert any("3/3+ files (2 new, 0 skipped, 1 failed)" in r.getMessage() for r in caplog.records)
    assert display.report is not None and display.report.downloaded == 2
