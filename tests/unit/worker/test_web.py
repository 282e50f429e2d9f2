"""Lead lookups' token check and documents: answers, never errors."""

from __future__ import annotations

from streams.worker.web import authorised


def test_the_token_check_answers_any_header():
    assert authorised(None, "anything")
    assert authorised("t0k3n", "Bearer t0k3n")
    assert not authorised("t0k3n", "Bearer t0k3m")
    assert not authorised("t0k3n", "Bearer \udcff\udcfe")  # non-UTF-8 bytes, as aiohttp hands them
    assert not authorised("t0k3n", "Bearer " + "x" * 100_000)
