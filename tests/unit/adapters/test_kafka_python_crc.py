"""kafka-python verifies the CRC-32C of every record batch it fetches (the stage-change reader,
`leadstage` tools, the benchmark and test harnesses). Without the `crc32c` extension it does so
in pure Python, which took more than half of a consumer's CPU (bench/README.md)."""

from kafka.record import util


def test_kafka_python_checks_crcs_with_the_native_extension() -> None:
    assert util.crc32c_c is not None, "install kafka-python[crc32c] (pyproject.toml)"
    assert util._crc32c is util.crc32c_c


def test_the_native_crc_is_the_castagnoli_checksum_kafka_writes() -> None:
    # RFC 3720 B.4's check value of CRC-32C over the ASCII digits 1 to 9
    assert util.calc_crc32c(b"123456789") == 0xE3069283
    # and it agrees with kafka-python's own pure-Python implementation on arbitrary bytes
    data = bytes(range(256)) * 7
    assert util.calc_crc32c(data) == util.crc32c_py(data)
