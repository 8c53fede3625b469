"""The acknowledgement floor of the benchmark's harness: an HTTP server that does nothing but
read the command and answer it, in its own process, as the bot's adapter does first.

The same sender measured against it shows how much of an acknowledgement time is the machine,
the sender and aiohttp's own work, and how much is the bot's. Prints ``{"port", "pid"}`` when
ready, like ``botproc``."""

from __future__ import annotations

import asyncio
import json
import os
import signal

from aiohttp import web

from bot.net.server import BACKLOG


async def _command(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"type": 5})


async def serve() -> None:
    app = web.Application()
    app.router.add_post("/bench/imagine", _command)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # The bot's own listen backlog, so a burst meets the same kernel queue.
    port = int(os.environ.get("IMAGINE_HTTP_PORT", "0"))
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=BACKLOG)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps({"port": server.sockets[0].getsockname()[1], "pid": os.getpid()}), flush=True)
    await stop.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
