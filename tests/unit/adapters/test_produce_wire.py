"""The batch sender's produce request and response against aiokafka's own encoding: the same
bytes for every request, the same answers read from every response, and aiokafka left to build
any version but v7."""

from __future__ import annotations

import io
import struct
from typing import Any

import pytest
from aiokafka.protocol.produce import (
    ProduceRequest,
    ProduceRequest_v5,
    ProduceRequest_v7,
    ProduceResponse_v7,
)
from hypothesis import given
from hypothesis import strategies as st

from streams.adapters.produce_wire import Produce, ProduceResponse

names = st.text(min_size=1, max_size=30)
int32 = st.integers(-2**31, 2**31 - 1)
int64 = st.integers(-2**63, 2**63 - 1)
requests = st.lists(st.tuples(names, st.lists(st.tuples(int32, st.binary(max_size=300)),
                                              max_size=5)), max_size=4)
responses = st.lists(st.tuples(names, st.lists(
    st.tuples(int32, st.integers(-2**15, 2**15 - 1), int64, int64, int64), max_size=5)),
    max_size=4)
KAFKA_4 = {ProduceRequest.API_KEY: (3, 12)}


@given(acks=st.sampled_from([-1, 1]), timeout=int32, topics=requests)
def test_the_request_is_the_bytes_aiokafka_writes(acks: int, timeout: int,
                                                  topics: list[Any]) -> None:
    ours = Produce(acks, timeout, topics).prepare(KAFKA_4)
    theirs = ProduceRequest(None, acks, timeout, topics).build(ProduceRequest_v7)
    assert ours.encode() == theirs.encode()
    # the header too, which stays aiokafka's
    assert ours.build_request_header(correlation_id=7, client_id="w").encode() == \
        theirs.build_request_header(correlation_id=7, client_id="w").encode()


def test_a_bytearray_batch_is_written_as_its_bytes() -> None:
    # the C record builder hands its batches over as bytearrays
    topics: list[Any] = [("t", [(0, bytearray(b"abc"))])]
    ours = Produce(-1, 100, topics).prepare(KAFKA_4)
    assert ours.encode() == ProduceRequest(None, -1, 100, [("t", [(0, b"abc")])]).build(
        ProduceRequest_v7).encode()


@given(topics=responses, throttle=int32)
def test_the_response_reads_as_aiokafka_reads_it(topics: list[Any], throttle: int) -> None:
    body = ProduceResponse_v7(topics=topics, throttle_time_ms=throttle).encode()
    ours = ProduceResponse.decode(io.BytesIO(body))
    theirs = ProduceResponse_v7.decode(io.BytesIO(body))
    assert ours.topics == [(t, [tuple(p) for p in ps]) for t, ps in theirs.topics]
    assert ours.throttle_time_ms == theirs.throttle_time_ms


def test_the_response_is_read_from_where_the_header_left_the_buffer() -> None:
    body = ProduceResponse_v7(topics=[("t", [(1, 0, 41, -1, 0)])], throttle_time_ms=0).encode()
    buffer = io.BytesIO(b"\x00\x00\x00\x07" + body)  # a correlation id, read by aiokafka first
    buffer.read(4)
    assert ProduceResponse.decode(buffer).topics == [("t", [(1, 0, 41, -1, 0)])]


@pytest.mark.parametrize("cut", [1, 5, 12, 30])
def test_a_cut_response_raises_rather_than_answering(cut: int) -> None:
    body = ProduceResponse_v7(topics=[("topic", [(1, 0, 41, -1, 0)])],
                              throttle_time_ms=0).encode()
    with pytest.raises((struct.error, ValueError)):
        ProduceResponse.decode(io.BytesIO(body[:-cut]))


def test_a_broker_without_v7_gets_what_aiokafka_builds() -> None:
    topics: list[Any] = [("t", [(0, b"abc")])]
    built = Produce(-1, 100, topics).prepare({ProduceRequest.API_KEY: (0, 5)})
    assert type(built) is ProduceRequest_v5
    assert built.encode() == ProduceRequest(None, -1, 100, topics).build(
        ProduceRequest_v5).encode()
