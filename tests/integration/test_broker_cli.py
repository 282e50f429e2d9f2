"""`leadstage broker start | status | stop` as a user runs them, on its own ports and folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streams.tools import broker


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "leadstage"
    return subprocess.run([str(exe), *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=180)


def test_broker_start_status_stop(tmp_path, kafka_bootstrap):
    env = {"LEADSTAGE_BROKER_PORT": "19392", "LEADSTAGE_BROKER_CONTROLLER_PORT": "19393",
           "LEADSTAGE_BROKER_DIR": str(tmp_path / "broker")}
    cfg = broker.BrokerConfig(port=19392, controller_port=19393, directory=tmp_path / "broker")
    try:
        first = _cli(["broker", "start"], env)
        assert first.returncode == 0, first.stderr
        address = first.stdout.strip().splitlines()[-1]
        assert address == "127.0.0.1:19392"
        assert broker.accepts_clients(address)
        pid = broker.running_pid(cfg)
        assert pid is not None

        again = _cli(["broker", "start"], env)  # finds it running: same address, same process
        assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == address
        assert "already running" in again.stderr
        assert broker.running_pid(cfg) == pid

        status = _cli(["broker", "status"], env)
        assert status.returncode == 0 and f"pid {pid}" in status.stdout

        stopped = _cli(["broker", "stop"], env)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not broker._pid_alive(pid)
        assert _cli(["broker", "status"], env).returncode == 1
    finally:
        broker.stop(cfg)


def test_start_fails_clearly_when_the_port_is_taken(tmp_path, kafka_bootstrap):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"LEADSTAGE_BROKER_PORT": str(port), "LEADSTAGE_BROKER_CONTROLLER_PORT": "19395",
               "LEADSTAGE_BROKER_DIR": str(tmp_path / "broker")}
        result = _cli(["broker", "start"], env)
    assert result.returncode == 1
    assert f"Port {port}" in result.stderr and "taken" in result.stderr
