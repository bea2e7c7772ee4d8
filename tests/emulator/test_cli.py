"""``python -m neuromorpho_fetch.emulator`` as a real process: ready file, signals, bad flags."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from neuromorpho_fetch import ssl_context
from neuromorpho_fetch.emulator.__main__ import parse_args

#: Needs real sockets, processes or signals: the system tier (pytest -m system).
pytestmark = pytest.mark.system

MODULE = [sys.executable, "-m", "neuromorpho_fetch.emulator"]


@contextmanager
def spawn(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    ready = tmp_path / "ready.json"
    cmd = [*MODULE, "--port", "0", "--neurons", "100", "--ready-file", str(ready), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no ready file"
            time.sleep(0.02)
        yield proc, json.loads(ready.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def get_json(url: str, ca_file: str | None = None) -> Any:
    ctx = ssl_context(ca_file=ca_file, legacy=True) if ca_file else None
    with urllib.request.urlopen(url, context=ctx, timeout=10) as resp:
        return json.load(resp)


def test_ready_file_then_sigterm(tmp_path: Path) -> None:
    with spawn(tmp_path, "--tls", "none") as (proc, info):
        assert set(info) >= {"base_url", "ca_file", "pid"}
        assert info["pid"] == proc.pid
        assert info["ca_file"] is None
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert get_json(info["base_url"] + "/api/health") == {"status": "UP"}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert info["base_url"] in out
    assert not (tmp_path / "ready.json").exists()


def test_default_legacy_tls_hands_out_the_ca_file(tmp_path: Path) -> None:
    with spawn(tmp_path) as (proc, info):
        assert info["base_url"].startswith("https://")
        assert Path(info["ca_file"]).is_file()
        assert get_json(info["base_url"] + "/api/health", info["ca_file"]) == {"status": "UP"}
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert info["ca_file"] in out
    assert not Path(info["ca_file"]).exists()  # the throwaway CA goes with the process


@pytest.mark.parametrize("args", [["--tls", "ancient"], ["--fault-rate", "2"]])
def test_bad_flags_exit_2_with_one_line(args: list[str]) -> None:
    proc = subprocess.run([*MODULE, *args], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "error:" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--faults", "503,explode"],
        ["--port", "-1"],
        ["--oversize", "truncate"],
        ["--no-such-flag"],
        ["--tls", "none", "--redirect-http"],
        ["--missing-rate", "-0.1"],
        ["--neurons", "many"],
        ["--max-page-size", "0"],
        ["--batch-select", "500"],
        ["--unquoted-words", "and"],
    ],
)
def test_every_bad_flag_is_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err, err


def test_every_contract_flag_parses() -> None:
    config, ready = parse_args(
        [
            "--host", "127.0.0.1", "--port", "0", "--neurons", "50", "--seed", "3", "--tls", "modern",
            "--ready-file", "/tmp/r.json", "--latency-ms", "5", "--jitter-ms", "2", "--bandwidth-kbps", "100",
            "--max-in-flight", "4", "--fault-rate", "0.1",
            "--faults", "503,429,500,reset,truncate,html200,html404,stall",
            "--fault-max-per-url", "2", "--missing-rate", "0.01", "--oversize", "400", "--no-hits", "empty",
            "--past-last", "404", "--redirect-http", "--path-case", "insensitive", "--empty-selects",
            "--stall-ms", "100", "--hostile-names", "--file-kb", "20", "--fault-scope", "files",
            "--max-page-size", "100", "--page-links", "--batch-select", "404", "--unquoted-words", "or",
        ]
    )  # fmt: skip
    assert ready == Path("/tmp/r.json")
    assert config.tls == "modern" and config.faults[-1] == "stall" and config.fault_scope == "files"
    assert config.max_in_flight == 4 and config.file_kb == 20 and config.redirect_http
    assert config.max_page_size == 100
    assert config.page_links and config.batch_select == "404" and config.unquoted_words == "or"
