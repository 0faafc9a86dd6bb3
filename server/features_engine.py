"""The engine as the editor sees it: one warning when it is down, ``covey.engineStart`` /
``covey.engineStop`` through the engine manager, and ``covey/engineStatus``.

The server never starts an engine by itself unless ``engine.autostart`` is set: starting
vLLM takes a minute and gigabytes, which is the user's call.
"""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from covey_server import protocol

log = logging.getLogger("covey.engine-link")


async def engine_status(ls) -> dict:
    session = ls.require_session()
    up = await session.router.refresh_models()
    if not session.engine.managed:
        state = "remote" if up else "down"
        reason = "" if up else f"no answer from {session.engine.url}"
        return {"state": state, "url": session.engine.url, "device": "remote",
                "models": session.router.served_models, "reason": reason}
    from covey_specialists import engine

    status = await asyncio.to_thread(engine.status, session.table)
    return {"state": status.state, "url": status.url, "device": status.device,
            "models": status.models, "reason": status.reason}


async def check_engine(ls) -> None:
    """At start: is the engine there? Warn once if not (and start it only if configured)."""
    session = ls.require_session()
    status = await engine_status(ls)
    ls.protocol.notify(protocol.ENGINE_STATUS, status)
    if status["state"] in ("up", "remote"):
        return
    if session.config.engine.autostart and session.engine.managed:
        ls.spawn(start_engine(ls))
        return
    reason = f" ({status['reason']})" if status.get("reason") else ""
    ls.notice("engine-down", f"Covey: the engine at {status['url']} is not running{reason}; "
              "start it with `covey engine up` or the covey.engineStart command.")


async def start_engine(ls) -> dict:
    session = ls.require_session()
    if not session.engine.managed:
        return await engine_status(ls)
    from covey_specialists import engine

    ls.protocol.notify(protocol.ENGINE_STATUS, {"state": "starting", "url": session.engine.url,
                                       "device": "", "models": [], "reason": ""})
    try:
        await asyncio.to_thread(engine.ensure_up, session.table)
    except engine.EngineError as exc:
        first_line = str(exc).split("\n", 1)[0]
        ls.window_show_message(types.ShowMessageParams(
            types.MessageType.Error, f"Covey: the engine did not start: {first_line}"))
    status = await engine_status(ls)
    if status["state"] in ("up", "remote"):
        ls.clear_notice("engine-down")
    ls.protocol.notify(protocol.ENGINE_STATUS, status)
    return status


async def stop_engine(ls) -> dict:
    session = ls.require_session()
    if session.engine.managed:
        from covey_specialists import engine

        await asyncio.to_thread(engine.down, session.table)
    status = await engine_status(ls)
    ls.protocol.notify(protocol.ENGINE_STATUS, status)
    return status


def register(ls) -> None:
    @ls.command(protocol.ENGINE_START)
    async def engine_start(ls, *args):
        return await start_engine(ls)

    @ls.command(protocol.ENGINE_STOP)
    async def engine_stop(ls, *args):
        return await stop_engine(ls)

    @ls.feature(protocol.ENGINE_STATUS)
    async def engine_status_request(ls, params=None):
        return await engine_status(ls)
