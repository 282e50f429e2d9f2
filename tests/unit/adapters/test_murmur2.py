"""The sender's murmur2 is Kafka's: the partition of every key is what Java, kafka-python and
aiokafka give it."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.adapters.batch_sender import murmur2


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_the_same_hash_as_the_reference_implementations(key):
    assert murmur2(key) == aiokafka_murmur2(key)
    assert murmur2(key) & 0x7FFFFFFF == kafka_python_murmur2(key) & 0x7FFFFFFF
