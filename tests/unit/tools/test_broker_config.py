"""The local broker's generated configuration and pid handling, without starting Java."""

import os
import socket
import subprocess
import sys
import time

from streams.tools import broker


def test_server_properties_are_single_node_kraft_on_loopback(tmp_path):
    cfg = broker.BrokerConfig(port=19092, controller_port=19093, directory=tmp_path)
    props = dict(
        line.split("=", 1) for line in broker._server_properties(cfg).splitlines() if line
    )
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.dirs"] == str(tmp_path / "data")


def test_a_cluster_is_one_controller_and_brokers_that_name_it_with_kafka_s_topics_on_each(
        tmp_path):
    nodes = broker.cluster_configs(tmp_path, port=19400, size=3)
    props = [dict(line.split("=", 1) for line in broker._server_properties(cfg).splitlines()
                  if line) for cfg in nodes]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert [p["process.roles"] for p in props] == ["broker,controller", "broker", "broker"]
    assert [p["listeners"] for p in props] == [
        "PLAINTEXT://127.0.0.1:19400,CONTROLLER://127.0.0.1:19401",
        "PLAINTEXT://127.0.0.1:19402", "PLAINTEXT://127.0.0.1:19404"]
    assert {p["controller.quorum.voters"] for p in props} == {"1@127.0.0.1:19401"}
    # a lost node loses none of the group offsets; topics made with -1 get three replicas
    assert {p["offsets.topic.replication.factor"] for p in props} == {"3"}
    assert {p["default.replication.factor"] for p in props} == {"3"}
    assert len({cfg.cluster_id for cfg in nodes}) == 1 and nodes[0].cluster_id
    assert len({p["log.dirs"] for p in props}) == 3


def test_kafka_version_is_pinned_4x():
    assert broker.kafka_version().startswith("4.")


def test_running_pid_ignores_stale_and_foreign_pids(tmp_path):
    cfg = broker.BrokerConfig(directory=tmp_path)
    assert broker.running_pid(cfg) is None
    cfg.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Kafka process
    assert broker.running_pid(cfg) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    cfg.pid_file.write_text(f"{dead.pid}\n")
    assert broker.running_pid(cfg) is None


def test_port_in_use_detects_a_listener():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert broker._port_in_use(s.getsockname()[1])


def test_cluster_ids_never_look_like_options():
    # About 1 in 64 random ids would start with '-' and break `kafka-storage format`.
    ids = {broker.new_cluster_id() for _ in range(3000)}
    assert len(ids) == 3000
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)


def test_the_wait_for_deleted_files_sees_every_topic_folder(tmp_path):
    """Each topic's partition folders count, live or renamed for deletion, not just the last
    topic's; another topic's folders, whose names only start the same, do not."""
    (tmp_path / "a-0").mkdir()
    (tmp_path / "b-1.0123abcd-delete").mkdir()
    (tmp_path / "ab-0").mkdir()
    assert not broker._files_gone(tmp_path, ["a", "b"], timeout_s=0)
    (tmp_path / "b-1.0123abcd-delete").rmdir()
    assert not broker._files_gone(tmp_path, ["a", "b"], timeout_s=0)  # a-0 is still there
    (tmp_path / "a-0").rmdir()
    assert broker._files_gone(tmp_path, ["a", "b"], timeout_s=0)


def test_a_probe_of_an_address_taking_no_connections_answers_at_once():
    # kafka-python's client alone waits out its 30 s bootstrap timeout on a closed port, which
    # made a broker restarting after a kill -9 look ready 17 s after it was
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once the socket closes: nothing listens there
    started = time.monotonic()
    assert not broker.accepts_clients(f"127.0.0.1:{port}", timeout_s=3)
    assert not broker.accepts_clients(f"127.0.0.1:{port},127.0.0.1:{port}", timeout_s=3)
    assert time.monotonic() - started < 10


def test_the_cli_names_a_cluster_s_nodes_and_refuses_a_secured_one(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from streams.tools.cli import main

    monkeypatch.setenv("LEADSTAGE_BROKER_DIR", str(tmp_path))
    monkeypatch.setenv("LEADSTAGE_BROKER_PORT", "19500")
    status = CliRunner().invoke(main, ["broker", "status", "--nodes", "3"])
    assert status.exit_code == 1
    assert status.output.splitlines() == ["node 1: stopped", "node 2: stopped",
                                          "node 3: stopped"]
    refused = CliRunner().invoke(main, ["broker", "start", "--secure", "--nodes", "3"])
    assert refused.exit_code == 2
    assert "a local cluster is plaintext only" in refused.output
    assert not any(tmp_path.iterdir())  # nothing formatted or started
