"""Kafka's murmur2: the hash Java's default partitioner (and kafka-python's, aiokafka's) gives a
key, MurmurHash2 (32-bit) with Java's seed.

Written here, and compiled with the hot modules (streams/__init__.py, MODULES) with C integer
types (murmur2.pxd), rather than called from the `murmurhash2` package: that package lets go of
the interpreter's lock around every hash, and a 20 ns hash is then a hand-over. In the worker,
whenever Faust's consumer thread was waiting to unpack the next fetch, the event loop gave it
the lock at one of the 19,574 hashes a second of a live stream and waited to get it back: 1% of
the loop's time in a soak, where 7,680 calls in 94 s took 70 µs on average (bench/README.md,
"The interpreter's lock given away"). Interpreted, this is the same hash in Python integers,
masked to 32 bits.
"""

from __future__ import annotations

#: MurmurHash2's multiplier and Java's seed (Utils.murmur2)
_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The unsigned 32-bit hash of `data`, as aiokafka's `murmur2` returns it."""
    p = data  # compiled: a pointer to the bytes' buffer (murmur2.pxd)
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - (length & 3)
    i = 0
    while i < end:
        k = p[i + 3]  # little-endian, built up in an unsigned 32-bit integer
        k = (k << 8) | p[i + 2]
        k = (k << 8) | p[i + 1]
        k = (k << 8) | p[i]
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
        i += 4
    rest = length & 3
    if rest == 3:
        h ^= p[i + 2] << 16
    if rest >= 2:
        h ^= p[i + 1] << 8
    if rest >= 1:
        h ^= p[i]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h
