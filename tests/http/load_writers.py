"""Writers of a load test, run in a process of their own: ``python -m tests.http.load_writers``.

Arguments: the server's URL, a key, the number of writers and of posts each. Each
writer posts its events one after the other; all writers at once. Prints the
status of every post as one JSON list. In a process of its own so that the
clients' work does not compete with the server under test for one interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys

import httpx


async def _writer(client: httpx.AsyncClient, writer: int, posts: int) -> list[int]:
    statuses = []
    for n in range(posts):
        body = {"event_type": "load", "message": f"{writer}-{n}"}
        statuses.append((await client.post("/api/events", json=body)).status_code)
    return statuses


async def main(url: str, key: str, writers: int, posts: int) -> list[int]:
    """Every status, writer by writer."""
    limits = httpx.Limits(max_connections=writers)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=60, limits=limits
    ) as client:
        done = await asyncio.gather(*(_writer(client, w, posts) for w in range(writers)))
    return [status for statuses in done for status in statuses]


if __name__ == "__main__":
    url, key, writers, posts = sys.argv[1:5]
    print(json.dumps(asyncio.run(main(url, key, int(writers), int(posts)))))
