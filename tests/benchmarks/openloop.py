"""An open-loop HTTP load generator, run in a process of its own.

Request i is sent at `start + i / rate` whatever happened to the ones before it (a slow answer
never delays the next request, as it would with a client that waits), each on a new connection
(`Connection: close`, as a proxy that does not keep upstream connections alive forwards them),
and its latency is measured from the time it was *due*, not from when it went out: a client
that fell behind cannot hide the server's queueing (no coordinated omission).

    python -m tests.benchmarks.openloop <spec.json> <results.json>

spec: {"host", "port", "rate", "timeout", "requests": [base64 of raw HTTP/1.1 requests]}.
results: one [due_s, lag_s, latency_s, status] per request (status 0: no answer in time or a
connection error), in the order they were due.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys


async def _one(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def offer(spec: dict) -> list[list[float]]:
    loop = asyncio.get_running_loop()
    requests = [base64.b64decode(r) for r in spec["requests"]]
    rate, timeout = spec["rate"], spec["timeout"]
    results: list[list[float]] = [[0.0, 0.0, 0.0, 0] for _ in requests]
    start = loop.time() + 0.2

    async def send(i: int, due: float) -> None:
        sent = loop.time()
        try:
            status = await asyncio.wait_for(_one(spec["host"], spec["port"], requests[i]), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError):
            status = 0
        results[i] = [due - start, sent - due, loop.time() - due, status]

    tasks = []
    for i in range(len(requests)):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, due)))
    await asyncio.gather(*tasks)
    return results


def main() -> None:
    spec_path, results_path = sys.argv[1:3]
    with open(spec_path) as f:
        spec = json.load(f)
    results = asyncio.run(offer(spec))
    with open(results_path, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
