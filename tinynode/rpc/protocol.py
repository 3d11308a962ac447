"""JSON-RPC request and response shapes as Bitcoin Core serves them, and Core's error codes.

Core (src/rpc/request.cpp, src/httprpc.cpp) accepts JSON-RPC 1.0-style requests (no
"jsonrpc" member, or "1.0"), JSON-RPC 2.0 requests and batches (a JSON array of requests):

- 1.0 / legacy: the reply always carries "result", "error" and "id"; a failed call has
  "result": null and an HTTP status of 404 (method not found), 400 (invalid request) or 500.
- 2.0: the reply carries "jsonrpc": "2.0", "id" and exactly one of "result" / "error";
  the HTTP status is 200. A 2.0 request without "id" is a notification: no reply.
- A batch always gets HTTP 200 and an array with one reply per non-notification request.

This module is stdlib only: the CLI imports it without pulling in aiohttp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RPCError", "Request", "parse_request", "decode_body", "success", "failure", "http_status_for",
    "dumps", "loads", "Amount", "RawNumber", "MISSING_ID",
    "RPC_MISC_ERROR", "RPC_TYPE_ERROR", "RPC_INVALID_ADDRESS_OR_KEY", "RPC_OUT_OF_MEMORY",
    "RPC_INVALID_PARAMETER", "RPC_DATABASE_ERROR", "RPC_DESERIALIZATION_ERROR",
    "RPC_VERIFY_ERROR", "RPC_VERIFY_REJECTED", "RPC_VERIFY_ALREADY_IN_CHAIN",
    "RPC_IN_WARMUP", "RPC_METHOD_DEPRECATED", "RPC_CLIENT_NOT_CONNECTED",
    "RPC_CLIENT_IN_INITIAL_DOWNLOAD", "RPC_CLIENT_NODE_ALREADY_ADDED",
    "RPC_CLIENT_NODE_NOT_ADDED", "RPC_CLIENT_NODE_NOT_CONNECTED", "RPC_CLIENT_INVALID_IP_OR_SUBNET",
    "RPC_CLIENT_P2P_DISABLED",
    "RPC_WALLET_ERROR", "RPC_WALLET_INSUFFICIENT_FUNDS",
    "RPC_INVALID_REQUEST", "RPC_METHOD_NOT_FOUND", "RPC_INVALID_PARAMS", "RPC_INTERNAL_ERROR",
    "RPC_PARSE_ERROR",
]

# Standard JSON-RPC 2.0 errors (Core's names from src/rpc/protocol.h).
RPC_INVALID_REQUEST = -32600
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_PARAMS = -32602
RPC_INTERNAL_ERROR = -32603
RPC_PARSE_ERROR = -32700

# General application-defined errors.
RPC_MISC_ERROR = -1
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_OUT_OF_MEMORY = -7
RPC_INVALID_PARAMETER = -8
RPC_DATABASE_ERROR = -20
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
RPC_IN_WARMUP = -28
RPC_METHOD_DEPRECATED = -32

# P2P client errors.
RPC_CLIENT_NOT_CONNECTED = -9
RPC_CLIENT_IN_INITIAL_DOWNLOAD = -10
RPC_CLIENT_NODE_ALREADY_ADDED = -23
RPC_CLIENT_NODE_NOT_ADDED = -24
RPC_CLIENT_NODE_NOT_CONNECTED = -29
RPC_CLIENT_INVALID_IP_OR_SUBNET = -30
RPC_CLIENT_P2P_DISABLED = -31

# Wallet errors.
RPC_WALLET_ERROR = -4
RPC_WALLET_INSUFFICIENT_FUNDS = -6

#: Marks a JSON-RPC 2.0 notification (a request object without "id").
MISSING_ID = object()


class RPCError(Exception):
    """An error reply: Core's numeric code and a sentence for a person."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    def __repr__(self) -> str:
        return f"RPCError({self.code}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed call. `params` is a list (positional) or a dict (named)."""

    method: str
    params: list | dict
    id: Any = None
    v2: bool = False

    @property
    def is_notification(self) -> bool:
        return self.v2 and self.id is MISSING_ID


def parse_request(obj: Any) -> Request:
    """Core's `JSONRPCRequest::parse`: RPCError(-32600) for a malformed request object."""
    if not isinstance(obj, dict):
        raise RPCError(RPC_INVALID_REQUEST, "Invalid Request object")
    version = obj.get("jsonrpc")
    v2 = version == "2.0"
    rid = obj["id"] if "id" in obj else (MISSING_ID if v2 else None)
    method = obj.get("method")
    if method is None:
        raise RPCError(RPC_INVALID_REQUEST, "Missing method")
    if not isinstance(method, str):
        raise RPCError(RPC_INVALID_REQUEST, "Method must be a string")
    params = obj.get("params")
    if params is None:
        params = []
    elif not isinstance(params, (list, dict)):
        raise RPCError(RPC_INVALID_REQUEST, "Params must be an array or object")
    return Request(method, params, rid, v2)


def decode_body(body: bytes) -> Any:
    """An HTTP body as JSON, or RPCError(-32700 "Parse error") as Core's `JSONRPCRequest` parse.

    Any failure of the parser is a parse error, including a body nested deeper than Python's
    recursion limit (RecursionError is not a ValueError) and bytes that are not UTF-8.
    """
    try:
        return json.loads(body, object_pairs_hook=_json_object)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RPCError(RPC_PARSE_ERROR, "Parse error") from None


class JSONPairs(dict):
    """A JSON object that repeats a key: a dict (the last value wins) that also keeps every
    (key, value) pair in order in `pairs`, as Core's UniValue does (createrawtransaction's
    outputs report a duplicated address)."""

    pairs: list


def _json_object(pairs: list) -> dict:
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    obj = JSONPairs(d)
    obj.pairs = pairs
    return obj


def request_id(obj: Any) -> Any:
    """The id to echo in an error reply for an object that failed to parse."""
    if isinstance(obj, dict):
        rid = obj.get("id")
        if isinstance(rid, (str, int, float)) or rid is None:
            return rid
    return None


def success(result: Any, rid: Any, v2: bool) -> dict[str, Any]:
    rid = None if rid is MISSING_ID else rid
    if v2:
        return {"jsonrpc": "2.0", "result": result, "id": rid}
    return {"result": result, "error": None, "id": rid}


def failure(err: RPCError, rid: Any, v2: bool) -> dict[str, Any]:
    rid = None if rid is MISSING_ID else rid
    if v2:
        return {"jsonrpc": "2.0", "error": err.to_json(), "id": rid}
    return {"result": None, "error": err.to_json(), "id": rid}


def http_status_for(code: int) -> int:
    """HTTP status Core's `JSONErrorReply` uses for a legacy (1.0) error reply."""
    if code == RPC_INVALID_REQUEST:
        return 400
    if code == RPC_METHOD_NOT_FOUND:
        return 404
    return 500


class Amount(float):
    """A number of coins: JSON shows it with 8 decimals, as Core's `ValueFromAmount` does."""

    __slots__ = ()


class RawNumber(float):
    """A JSON number that prints exactly as it was read (the CLI echoes the server's digits)."""

    def __new__(cls, text: str) -> "RawNumber":
        self = super().__new__(cls, text)
        self.text = text
        return self


def _floatstr(o: float, _repr: Any = float.__repr__) -> str:
    if isinstance(o, Amount):
        return f"{o:.8f}"
    text = getattr(o, "text", None)
    if text is not None:
        return text
    if o != o or o in (float("inf"), float("-inf")):
        return "null"
    return _repr(o)


class _Encoder(json.JSONEncoder):
    def iterencode(self, o: Any, _one_shot: bool = False):  # type: ignore[override]
        from json.encoder import _make_iterencode, encode_basestring, encode_basestring_ascii

        enc = encode_basestring_ascii if self.ensure_ascii else encode_basestring
        it = _make_iterencode({} if self.check_circular else None, self.default, enc, self.indent,
                              _floatstr, self.key_separator, self.item_separator, self.sort_keys,
                              self.skipkeys, _one_shot)
        return it(o, 0)


def dumps(obj: Any, indent: int | None = None) -> str:
    """JSON text with amounts as Core prints them (`50.00000000`)."""
    if indent is None:
        return _Encoder(separators=(",", ":")).encode(obj)
    return _Encoder(indent=indent).encode(obj)


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping each number's digits (for printing them back unchanged)."""
    return json.loads(text, parse_float=RawNumber)
