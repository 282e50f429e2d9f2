"""A minimal Faust app built with the project's settings mapping: it upper-cases what it reads.

Run by tests as a real worker process: `python -m faust -A tests.integration.apps.echo_app worker`.
"""

from __future__ import annotations

import os

import faust

from streams.adapters.faust_settings import faust_app_kwargs
from streams.adapters.settings import Settings

settings = Settings.from_env()
app = faust.App(os.environ["ECHO_APP_ID"], **faust_app_kwargs(settings, topic_partitions=2))
source = app.topic(os.environ["ECHO_IN"], key_serializer="raw", value_serializer="raw")
sink = app.topic(os.environ["ECHO_OUT"], key_serializer="raw", value_serializer="raw")


@app.agent(source)
async def echo(stream: faust.StreamT) -> None:
    async for key, value in stream.items():
        await sink.send(key=key, value=value.upper())
