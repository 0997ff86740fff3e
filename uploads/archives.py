"""ZIP archives streamed as they are written: no archive is ever held whole in memory or on disk.

`zipfile` writes to a sink that only collects bytes; after each chunk the generator hands on
what was collected. An unseekable sink makes `zipfile` write each entry's sizes after its data
(data descriptors), which every unzip tool reads.
"""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import IO

from asgiref.sync import sync_to_async

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024


class _Sink(io.RawIOBase):
    """A write-only, unseekable stream whose bytes are taken away as they come."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def stream_zip(entries: Iterable[tuple[str, Callable[[], IO[bytes]]]]) -> Iterator[bytes]:
    """The bytes of a ZIP holding each (name, opener) entry, a chunk at a time. The files are
    opened one at a time, as the archive reaches them. Stored, not deflated: the entries are
    JPEGs, which do not shrink."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, opener in entries:
            try:
                source = opener()
            except FileNotFoundError:
                logger.warning("Left %s out of a ZIP: its file is missing", name)
                continue
            with source, archive.open(name, "w") as target:
                while chunk := source.read(CHUNK_SIZE):
                    target.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


async def chunks_for_asgi(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Hand a synchronous stream to an ASGI server a chunk at a time. Given a synchronous
    iterator, Django's ASGI handler reads it whole into a list first (a whole ZIP in memory);
    each chunk is made in the thread the ORM runs in, as the view's own code would be."""
    take = sync_to_async(next, thread_sensitive=True)
    done = object()
    try:
        while (chunk := await take(chunks, done)) is not done:
            yield chunk
    finally:
        await sync_to_async(getattr(chunks, "close", lambda: None), thread_sensitive=True)()
