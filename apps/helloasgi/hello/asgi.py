"""A plain ASGI app: /ping answers pong, anything else 404."""

from collections.abc import Awaitable, Callable
from typing import Any


async def application(scope: dict[str, Any], receive: Callable[[], Awaitable[dict]],
                      send: Callable[[dict], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    found = scope["path"] == "/ping"
    await send({"type": "http.response.start", "status": 200 if found else 404,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"pong" if found else b"not found"})
