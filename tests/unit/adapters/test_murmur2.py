"""The sender's murmur2 is Kafka's: the partition of every key is what Java, kafka-python and
aiokafka give it, compiled and interpreted alike; and it keeps the interpreter's lock, which the
package it replaced gave away at every hash (adapters/murmur2.py says why that matters)."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from collections.abc import Callable
from types import ModuleType

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

import streams
from streams.adapters import murmur2 as compiled


def _interpreted() -> ModuleType:
    spec = importlib.util.spec_from_file_location("murmur2_interpreted",
                                                  streams.source_of(compiled.__name__))
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


INTERPRETED = _interpreted()
HASHES = {"compiled": compiled.murmur2, "interpreted": INTERPRETED.murmur2}


def test_the_tested_build_runs_it_compiled() -> None:
    assert streams.running_compiled(compiled)
    assert not streams.running_compiled(INTERPRETED)


@pytest.mark.parametrize("build", HASHES)
@settings(max_examples=2000, deadline=None)
@given(key=st.binary(max_size=300))
def test_the_same_hash_as_the_reference_implementations(build: str, key: bytes) -> None:
    hashed = HASHES[build](key)
    assert hashed == aiokafka_murmur2(key)
    assert hashed & 0x7FFFFFFF == kafka_python_murmur2(key) & 0x7FFFFFFF


@pytest.mark.parametrize("build", HASHES)
def test_every_tail_length_and_the_top_bit_of_every_byte(build: str) -> None:
    # keys of 0..11 bytes of 0xFF and of 0x80: each length modulo 4, the high bits shifted
    # into a 32-bit word (where C's integer promotion could go wrong)
    for byte in (0xFF, 0x80, 0x7F):
        for length in range(12):
            key = bytes([byte]) * length
            assert HASHES[build](key) == aiokafka_murmur2(key), (byte, length)


def _other_thread_runs_during(hash_keys: Callable[[], None]) -> int:
    """How many times a thread that wants the interpreter's lock ran while `hash_keys` did.
    With a switch interval far longer than the hashing, it runs only if a hash lets go of the
    lock."""
    ran = 0
    stop = False

    def eager() -> None:
        nonlocal ran
        while not stop:
            ran += 1
            time.sleep(0)  # lets go of the lock, and wants it back at once

    saved = sys.getswitchinterval()
    thread = threading.Thread(target=eager, daemon=True)
    thread.start()
    try:
        while ran == 0:
            time.sleep(0)
        sys.setswitchinterval(30.0)
        time.sleep(0)  # the lock is ours now, and the thread waits for it
        before = ran
        hash_keys()
        after = ran
    finally:
        sys.setswitchinterval(saved)
        stop = True
        thread.join()
    return after - before


@pytest.mark.parametrize("build", HASHES)
def test_hashing_never_hands_the_interpreters_lock_to_another_thread(build: str) -> None:
    keys = [f"lead-{i:06d}".encode() for i in range(5000)]
    murmur2 = HASHES[build]
    assert _other_thread_runs_during(lambda: [murmur2(k) for k in keys]) == 0


def test_the_check_sees_a_hash_that_lets_go_of_the_lock() -> None:
    # the check above can fail: a call that releases the lock (time.sleep(0)) lets the thread in
    assert _other_thread_runs_during(lambda: [time.sleep(0) for _ in range(200)]) > 0
