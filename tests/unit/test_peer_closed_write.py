"""issue 19: after `tinynode lab heal` n0's log held `ERROR peer N task failed` with a traceback
(`RuntimeError: unable to perform operation on <TCPTransport closed=True>`): the writer wrote to a
transport that had closed. That is a normal disconnect: a debug line, no ERROR, no traceback."""
import asyncio
import logging

import pytest

from tests.unit.test_peer import pair
from tinynode.wire import messages as m


async def _write_after_close() -> str:
    peer, host, handler, raw, task = await pair(inbound=True)
    try:
        await raw.handshake()
        peer._writer.transport.close()          # the socket goes away under the peer
        peer.send(m.Ping(1))                     # ... and the writer still has something to send
        await asyncio.wait_for(task, 3)
    finally:
        await raw.close()
    assert host.closed == [peer]
    return peer.disconnect_reason


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_write_on_a_closed_transport_is_a_normal_disconnect(caplog, loop):
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")   # the daemon's loop: it raises RuntimeError here
        factory = uvloop.new_event_loop
    else:
        factory = None
    with caplog.at_level(logging.DEBUG, logger="tinynode.net.peer"):
        with asyncio.Runner(loop_factory=factory) as runner:
            reason = runner.run(_write_after_close())
    assert not reason.startswith("internal error"), reason
    assert reason in ("connection closed", "connection closed by peer")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert not [r for r in caplog.records if r.exc_info]
