"""JSON-RPC server on a Unix socket: Core's shapes for 1.0/2.0, batches, errors, limits."""
import asyncio
import os
import stat
import tempfile
from pathlib import Path

import pytest

from tinynode.rpc.client import AsyncRPCClient, ConnectionFailed, RPCClient
from tinynode.rpc.protocol import RPCError, parse_request
from tinynode.rpc.server import RPCServer, SocketInUseError


async def _dispatch(method, params):
    if method == "echo":
        return params
    if method == "fail":
        raise RPCError(-5, "No such thing")
    if method == "boom":
        raise ZeroDivisionError("division by zero")
    if method == "slow":  # never answers: the server's per-request timeout must end it
        await asyncio.Event().wait()
    raise RPCError(-32601, "Method not found")


@pytest.fixture
async def server():
    d = tempfile.mkdtemp(prefix="tnrpc", dir="/tmp")
    srv = RPCServer(Path(d) / "rpc.sock", _dispatch, max_body=10_000, timeout=0.3)
    await srv.start()
    client = AsyncRPCClient(srv.path)
    try:
        yield srv, client
    finally:
        await client.close()
        await srv.stop()
        os.rmdir(d)


async def test_socket_mode_is_0600(server):
    srv, _ = server
    assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600


async def test_socket_is_created_0600_not_chmod_afterwards(monkeypatch):
    """The socket file never exists with a looser mode: no chmod after listening is needed
    (os.chmod is made to fail), even under a permissive umask."""
    def no_chmod(*a, **kw):
        raise AssertionError("the socket was chmod-ed after it was created")
    monkeypatch.setattr(os, "chmod", no_chmod)
    old = os.umask(0o000)
    d = tempfile.mkdtemp(prefix="tnrpc", dir="/tmp")
    srv = RPCServer(Path(d) / "rpc.sock", _dispatch)
    try:
        await srv.start()
        assert stat.S_IMODE(os.stat(srv.path).st_mode) == 0o600
    finally:
        os.umask(old)
        await srv.stop()
        os.rmdir(d)


async def test_legacy_request_shape(server):
    _, c = server
    status, reply = await c.post({"id": 7, "method": "echo", "params": [1, "a"]})
    assert status == 200
    assert reply == {"result": [1, "a"], "error": None, "id": 7}


async def test_v2_request_shape_and_notification(server):
    _, c = server
    status, reply = await c.post({"jsonrpc": "2.0", "id": "x", "method": "echo", "params": {"a": 1}})
    assert (status, reply) == (200, {"jsonrpc": "2.0", "result": {"a": 1}, "id": "x"})
    status, reply = await c.post({"jsonrpc": "2.0", "method": "echo", "params": []})
    assert status == 204 and reply is None
    status, reply = await c.post({"jsonrpc": "2.0", "id": 1, "method": "fail"})
    assert status == 200 and reply == {"jsonrpc": "2.0", "error": {"code": -5, "message": "No such thing"}, "id": 1}


async def test_errors_have_core_codes_and_http_status(server):
    _, c = server
    status, reply = await c.post({"id": 1, "method": "nosuch"})
    assert status == 404 and reply["error"]["code"] == -32601 and reply["result"] is None
    status, reply = await c.post({"id": 2, "method": "fail"})
    assert status == 500 and reply["error"] == {"code": -5, "message": "No such thing"} and reply["id"] == 2
    status, reply = await c.post({"id": 3})
    assert status == 400 and reply["error"]["code"] == -32600 and reply["id"] == 3
    status, reply = await c.post({"id": 4, "method": "echo", "params": "notalist"})
    assert status == 400 and reply["error"]["code"] == -32600


async def test_malformed_bodies_get_error_objects(server):
    _, c = server
    for raw in (b"{not json", b"\xff\xfe", b"", b"42", b'"str"'):
        status, reply = await c.post(None, raw=raw)
        assert status == 500 and reply["error"]["code"] == -32700, raw


async def test_internal_exception_is_a_sentence_not_a_traceback(server):
    _, c = server
    status, reply = await c.post({"id": 1, "method": "boom"})
    assert status == 500 and reply["error"]["code"] == -1
    assert "division by zero" in reply["error"]["message"] and "Traceback" not in reply["error"]["message"]


async def test_batch(server):
    _, c = server
    status, reply = await c.post([
        {"jsonrpc": "2.0", "id": 1, "method": "echo", "params": [1]},
        {"jsonrpc": "2.0", "id": 2, "method": "nosuch"},
        {"jsonrpc": "2.0", "method": "echo"},          # notification: no reply
        5,                                             # not an object
        {"id": 3, "method": "echo", "params": [3]},
    ])
    assert status == 200
    assert reply[0] == {"jsonrpc": "2.0", "result": [1], "id": 1}
    assert reply[1]["error"]["code"] == -32601 and reply[1]["id"] == 2
    assert reply[2]["error"]["code"] == -32600 and reply[2]["id"] is None
    assert reply[3] == {"result": [3], "error": None, "id": 3}
    assert len(reply) == 4
    status, reply = await c.post([])
    assert (status, reply) == (200, [])


async def test_body_limit_and_timeout(server):
    _, c = server
    status, reply = await c.post(None, raw=b'{"method":"echo","params":["' + b"a" * 20_000 + b'"]}')
    assert status == 413 and reply["error"]["code"] == -32600
    with pytest.raises(RPCError) as e:
        await c.call("slow")
    assert e.value.code == -1 and "timed out" in e.value.message
    assert await c.call("echo", 1) == [1]      # the connection and server are still fine


async def test_batch_shares_one_deadline(server):
    """A batch gets one deadline (0.3 s here) for the HTTP request, not one per item: four
    never-answering calls end after about 0.3 s, each with an error reply, in order."""
    _, c = server
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    status, reply = await c.post([{"id": i, "method": "slow"} for i in range(4)])
    took = loop.time() - t0
    assert status == 200 and [r["id"] for r in reply] == [0, 1, 2, 3]
    assert all(r["result"] is None and r["error"]["code"] == -1 for r in reply)
    assert "timed out" in reply[0]["error"]["message"]
    assert "deadline" in reply[3]["error"]["message"]
    assert took < 0.3 * 2        # one per item would take 1.2 s


async def test_warmup_gets_minus_28(server):
    srv, c = server
    srv.warmup = "Loading block index..."
    with pytest.raises(RPCError) as e:
        await c.call("echo")
    assert e.value.code == -28 and e.value.message == "Loading block index..."
    srv.warmup = None
    assert await c.call("echo") == []


async def test_sync_client(server):
    srv, _ = server
    client = RPCClient(srv.path, timeout=5)
    assert await asyncio.to_thread(client.call, "echo", 1, "b") == [1, "b"]
    with pytest.raises(RPCError) as e:
        await asyncio.to_thread(client.call, "fail")
    assert e.value.code == -5


async def test_second_server_on_a_live_socket_is_refused(server):
    srv, _ = server
    other = RPCServer(srv.path, _dispatch)
    with pytest.raises(SocketInUseError):
        await other.start()


def test_sync_client_no_daemon():
    with pytest.raises(ConnectionFailed):
        RPCClient("/tmp/definitely-not-a-tinynode.sock").call("getblockcount")


def test_parse_request_rules():
    r = parse_request({"method": "m"})
    assert (r.method, r.params, r.id, r.v2) == ("m", [], None, False)
    assert parse_request({"jsonrpc": "2.0", "method": "m"}).is_notification
    for bad in ([], {"params": []}, {"method": 5}, {"method": "m", "params": 3}):
        with pytest.raises(RPCError) as e:
            parse_request(bad)
        assert e.value.code == -32600


async def test_tcp_with_cookie_auth(tmp_path):
    import aiohttp
    d = tempfile.mkdtemp(prefix="tnrpc", dir="/tmp")
    cookie_path = tmp_path / ".cookie"
    srv = RPCServer(Path(d) / "rpc.sock", _dispatch, tcp_port=0, cookie_path=cookie_path)
    await srv.start()
    try:
        assert stat.S_IMODE(os.stat(cookie_path).st_mode) == 0o600
        user, password = cookie_path.read_text().split(":")
        assert user == "__cookie__" and len(password) == 64
        url = f"http://127.0.0.1:{srv.tcp_port}/"
        body = {"jsonrpc": "1.0", "id": 1, "method": "echo", "params": [5]}
        def basic(u, p):
            import base64
            return {"Authorization": "Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()}
        async with aiohttp.ClientSession() as s:
            async with s.post(url, json=body, headers=basic(user, password)) as r:
                assert r.status == 200 and (await r.json())["result"] == [5]
            async with s.post(url, json=body, headers=basic(user, "wrong")) as r:
                assert r.status == 401
            async with s.post(url, json=body) as r:
                assert r.status == 401
        first = password
    finally:
        await srv.stop()
    assert not cookie_path.exists()
    # a new cookie on every start
    await srv.start()
    try:
        assert cookie_path.read_text().split(":")[1] != first
    finally:
        await srv.stop()
        os.rmdir(d)


def test_decode_body_turns_every_parser_failure_into_parse_error():
    """Core answers -32700 for any body its JSON parser refuses; a body nested deeper than
    Python's recursion limit raised RecursionError (not a ValueError) past the old handler."""
    from tinynode.rpc.protocol import RPC_PARSE_ERROR, RPCError, decode_body
    for body in (b"[" * 100_000, b'{"a":' * 50_000, b"\xff\xfe", b"{", b"", b"nan-ish"):
        with pytest.raises(RPCError) as e:
            decode_body(body)
        assert e.value.code == RPC_PARSE_ERROR and e.value.message == "Parse error"
    assert decode_body(b'[[[1]]]') == [[[1]]]


async def test_default_body_limit_is_cores_max_size():
    """Core's HTTP server takes bodies up to MAX_SIZE (32 MiB): a submitblock of a 4 MB witness
    block (8 MB of hex) fits; one byte over the limit is refused with 413 / -32600."""
    d = tempfile.mkdtemp(prefix="tnrpc", dir="/tmp")
    srv = RPCServer(Path(d) / "rpc.sock", _dispatch)
    await srv.start()
    c = AsyncRPCClient(srv.path)
    try:
        assert srv.max_body == 0x02000000
        hexblock = "ab" * 4_100_000
        assert await c.call("echo", hexblock) == [hexblock]
        status, reply = await c.post(None, raw=b" " * (0x02000000 + 1))
        assert status == 413 and reply["error"] == {"code": -32600, "message": "Request body over 33554432 bytes"}
    finally:
        await c.close()
        await srv.stop()
        os.rmdir(d)
