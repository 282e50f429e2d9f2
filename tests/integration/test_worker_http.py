"""The worker's HTTP pages hold up against careless and hostile clients (README "Security"):
bounded URLs, headers and connections, slow clients cut off, no banner."""

from __future__ import annotations

import socket
import time
import urllib.request


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out:
                break
        return out


def test_limits_banner_and_slow_clients(worker_factory):
    worker = worker_factory(16481, LEADSTAGE_WEB_MAX_CONNECTIONS="20",
                            LEADSTAGE_WEB_FIRST_REQUEST_SECONDS="3").start()
    worker.wait_ready()
    with urllib.request.urlopen(worker.url("/healthz"), timeout=10) as response:
        assert response.headers["Server"] == "leadstage"  # no Python/aiohttp versions
    long_url = raw(16481, b"GET /leads/" + b"x" * 10_000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
    assert long_url.split()[1] in (b"400", b"414"), long_url[:100]
    big_header = raw(16481, b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 10_000
                     + b"\r\n\r\n")
    assert big_header.split()[1] in (b"400", b"431"), big_header[:100]

    # a slow-drip client is cut off after its first-request deadline
    slow = socket.create_connection(("127.0.0.1", 16481), timeout=20)
    started = time.monotonic()
    closed = False
    try:
        slow.sendall(b"GET /healthz HTTP/1.1\r\n")
        for _ in range(15):
            time.sleep(1)
            try:
                slow.sendall(b"X")
                if slow.recv(1, socket.MSG_DONTWAIT) == b"":
                    closed = True
                    break
            except BlockingIOError:
                continue
            except OSError:
                closed = True
                break
    finally:
        slow.close()
    assert closed and time.monotonic() - started < 8

    # connections past the bound are closed at once; the worker still answers afterwards
    held = [socket.create_connection(("127.0.0.1", 16481), timeout=5) for _ in range(30)]
    try:
        time.sleep(0.5)
        refused = 0
        for s in held:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    refused += 1
            except BlockingIOError:
                pass
            except OSError:
                refused += 1
        assert refused >= 10
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    assert worker.get("/healthz")[0] == 200
