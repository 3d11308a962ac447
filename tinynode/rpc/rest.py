"""Bitcoin Core's REST interface (src/rest.cpp), read-only and unauthenticated, on the TCP RPC port.

Served only with `--rest` (off by default, as Core's `-rest`). Each handler mirrors Core's of the
same name: the URI is matched by prefix in Core's order (`uri_prefixes`), the format comes from
the last `.ext` of the path (`ParseDataFormat`: bin, hex or json), and every error is Core's
status code with Core's sentence as `text/plain` plus CRLF (`RESTERR`). While the node warms up
every handler answers 503 "Service temporarily unavailable: <status>" (`CheckWarmup`).

    /rest/tx/<txid>.<ext>                          mempool, then the tx index (with --txindex, as Core)
    /rest/block/<hash>.<ext>                       json = getblock verbosity 3 (with prevouts)
    /rest/block/notxdetails/<hash>.<ext>           json = getblock verbosity 1
    /rest/blockpart/<hash>.<bin|hex>?offset=&size=
    /rest/headers/<hash>.<ext>?count=N             and the older /rest/headers/<N>/<hash>.<ext>
    /rest/blockhashbyheight/<height>.<ext>
    /rest/chaininfo.json                           = getblockchaininfo
    /rest/mempool/info.json, /rest/mempool/contents.json?verbose=&mempool_sequence=
    /rest/getutxos[/checkmempool]/<txid>-<n>/....<ext>   (BIP64; at most 15 outpoints)
    /rest/spenttxouts/<hash>.<ext>                 the block's undo record
    /rest/blockfilter/…, /rest/blockfilterheaders/…      tinynode keeps no filter index: Core's
                                                   "Index is not enabled" answers

The JSON comes from the RPC's own builders (`RPCArea.tx_to_json`, `_block_to_json`,
`_header_json`, `_script_pubkey_json`, and the RPC methods `getblockchaininfo`,
`getmempoolinfo`, `getrawmempool`); this module only parses URIs and picks formats. It knows
nothing of HTTP servers: `RESTHandler.serve` takes the method, the raw URI and the body and
returns a `RESTReply` for the server to send.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import unquote_plus

from ..primitives.hashes import hash_to_hex, hex_to_hash
from ..primitives.serialize import ByteReader, DecodeError, ser_compact_size, ser_var_bytes
from ..primitives.tx import OutPoint
from .protocol import dumps
from .rawtx import txindex_enabled

if TYPE_CHECKING:  # pragma: no cover
    from .methods import RPCMethods

__all__ = ["RESTHandler", "RESTReply", "MAX_GETUTXOS_OUTPOINTS", "MAX_REST_HEADERS_RESULTS"]

log = logging.getLogger(__name__)

#: Core rest.cpp: at most 15 outpoints per getutxos request
MAX_GETUTXOS_OUTPOINTS = 15
#: Core rest.cpp: at most 2000 headers per /rest/headers request
MAX_REST_HEADERS_RESULTS = 2000
#: Core's MEMPOOL_HEIGHT: the height CCoinsViewMemPool gives outputs of pool transactions
MEMPOOL_HEIGHT = 0x7FFFFFFF

BIN, HEX, JSON, UNDEF = "bin", "hex", "json", ""
_FORMATS = (UNDEF, BIN, HEX, JSON)             # Core's rf_names, in order
_AVAILABLE = ".bin, .hex, .json"               # Core's AvailableDataFormatsString()

_CT_JSON, _CT_TEXT, _CT_BIN = "application/json", "text/plain", "application/octet-stream"
#: what libevent sends with a reply that set no Content-Type (Core's bare 404 and 405)
_CT_BARE = "text/html; charset=ISO-8859-1"

#: Core's SAFE_CHARS_URI (util/strencodings.cpp), for SanitizeString in error texts
_SAFE_URI = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                      "!*'();:@&=+$,/?#[]-_.~%")
#: what libevent's evhttp_uri_parse accepts in a request target (RFC 3986 characters)
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?#%\[\]]*\Z")
#: HTTP methods Core's server knows (others get 405 before any handler runs)
HTTP_METHODS = frozenset({"GET", "POST", "HEAD", "PUT"})


@dataclass(frozen=True, slots=True)
class RESTReply:
    """One HTTP answer: status, Content-Type and body."""

    status: int
    content_type: str | None
    body: bytes


class RESTError(Exception):
    """Core's `RESTERR`: a status and a sentence."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _err(status: int, message: str) -> RESTReply:
    return RESTReply(status, _CT_TEXT, (message + "\r\n").encode())


def _ok(rf: str, payload: Any) -> RESTReply:
    """bytes for bin; bytes (shown as hex) or str for hex; a JSON value for json."""
    if rf == BIN:
        return RESTReply(200, _CT_BIN, payload)
    if rf == HEX:
        text = payload.hex() if isinstance(payload, (bytes, bytearray)) else payload
        return RESTReply(200, _CT_TEXT, (text + "\n").encode())
    return RESTReply(200, _CT_JSON, (dumps(payload) + "\n").encode())


def _no_format(available: str = _AVAILABLE) -> RESTError:
    return RESTError(404, f"output format not found (available: {available})")


def parse_data_format(uri_part: str) -> tuple[str, str]:
    """Core `ParseDataFormat`: (param without query and extension, format). The query starts at
    the last '?'; the format is what follows the last '.', if it names one (an empty suffix
    is Core's UNDEF entry: the dot goes, the format stays undefined)."""
    q = uri_part.rfind("?")
    param = uri_part if q < 0 else uri_part[:q]
    dot = param.rfind(".")
    if dot < 0:
        return param, UNDEF
    suffix = param[dot + 1:]
    if suffix in _FORMATS:
        return param[:dot], suffix
    return param, UNDEF


def query_parameter(uri: str, key: str) -> str | None:
    """Core `GetQueryParameterFromUri`: the first value of `key` in the query (percent- and
    plus-decoded); a query libevent cannot parse yields none; a URI with characters RFC 3986
    does not allow is a 400."""
    if not _URI_CHARS.match(uri):
        raise RESTError(400, "URI parsing failed, it likely contained RFC 3986 invalid characters")
    q = uri.find("?")
    if q < 0:
        return None
    query = uri[q + 1:].split("#", 1)[0]
    pairs = []
    for item in query.split("&") if query else ():
        k, sep, v = item.partition("=")
        if not sep or not k:        # evhttp_parse_query_str fails: no parameters at all
            return None
        pairs.append((k, v))
    for k, v in pairs:
        if k == key:
            return unquote_plus(v)
    return None


def _hash_param(text: str) -> bytes | None:
    """Core `uint256::FromHex`: exactly 64 hex digits."""
    if len(text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
        return None
    return hex_to_hash(text)


def _to_integral(text: str, lo: int, hi: int) -> int | None:
    """Core `ToIntegral<T>`: the whole string is an optional '-' and decimal digits, in range."""
    if not re.fullmatch(r"-?[0-9]+", text):
        return None
    v = int(text)
    return v if lo <= v <= hi else None


def _sanitize(text: str) -> str:
    return "".join(c for c in text if c in _SAFE_URI)


class RESTHandler:
    """Core's REST handlers over one node's RPC method table (whose JSON builders it reuses)."""

    def __init__(self, methods: "RPCMethods"):
        self.methods = methods
        self.node = methods.node
        # Core's uri_prefixes, in its order: the first prefix the URI starts with wins
        self._prefixes: tuple[tuple[str, Callable[[str, str, bytes], Awaitable[RESTReply]]], ...] = (
            ("/rest/tx/", self.rest_tx),
            ("/rest/block/notxdetails/", self.rest_block_notxdetails),
            ("/rest/block/", self.rest_block_extended),
            ("/rest/blockpart/", self.rest_block_part),
            ("/rest/blockfilter/", self.rest_block_filter),
            ("/rest/blockfilterheaders/", self.rest_filter_header),
            ("/rest/chaininfo", self.rest_chaininfo),
            ("/rest/mempool/", self.rest_mempool),
            ("/rest/headers/", self.rest_headers),
            ("/rest/getutxos", self.rest_getutxos),
            ("/rest/blockhashbyheight/", self.rest_blockhash_by_height),
            ("/rest/spenttxouts/", self.rest_spent_txouts),
        )

    async def serve(self, method: str, uri: str, body: bytes, warmup: str | None) -> RESTReply:
        """Answer one request; `uri` is the raw request target (path and query, undecoded)."""
        if method not in HTTP_METHODS:
            return RESTReply(405, _CT_BARE, b"")
        for prefix, handler in self._prefixes:
            if uri.startswith(prefix):
                if warmup is not None:
                    return _err(503, f"Service temporarily unavailable: {warmup}")
                try:
                    return await handler(uri[len(prefix):], uri, body)
                except RESTError as e:
                    return _err(e.status, e.message)
        return RESTReply(404, _CT_BARE, b"")   # Core: no handler for the path

    # --- helpers on the writer thread ------------------------------------------------------------

    async def _w(self, fn: Callable[[], Any]) -> Any:
        return await self.node.writer.call(fn)

    def _cs(self):
        return self.node.writer.chainstate

    def _mempool(self):
        mp = self.node.mempool
        if mp is None:
            raise RESTError(404, "Mempool disabled or instance not found")
        return mp

    # --- handlers ---------------------------------------------------------------------------------

    async def rest_tx(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_tx`: the mempool first, then the tx index (`GetTransaction`); json is
        `TxToUniv` with the block hash (no confirmations), hex last as Core orders it."""
        hash_str, rf = parse_data_format(part)
        txid = _hash_param(hash_str)
        if txid is None:
            raise RESTError(400, f"Invalid hash: {hash_str}")

        def work():
            mp = self.node.mempool
            e = mp.get(txid) if mp is not None else None
            if e is not None:
                return e.tx, None
            if not txindex_enabled(self.node):      # Core GetTransaction without g_txindex
                return None, None
            found = self._cs().get_tx(txid)
            return (found[0], found[1]) if found is not None else (None, None)
        tx, block_hash = await self._w(work)
        if tx is None:
            raise RESTError(404, f"{hash_str} not found")
        if rf in (BIN, HEX):
            return _ok(rf, tx.raw)
        if rf == JSON:
            j = self.methods.tx_to_json(tx, block_hash, include_hex=True)
            j["hex"] = j.pop("hex")          # Core: ..., "blockhash", "hex"
            return _ok(JSON, j)
        raise _no_format()

    async def rest_block_extended(self, part: str, uri: str, body: bytes) -> RESTReply:
        return await self._rest_block(part, uri, verbosity=3)

    async def rest_block_notxdetails(self, part: str, uri: str, body: bytes) -> RESTReply:
        return await self._rest_block(part, uri, verbosity=1)

    async def rest_block_part(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_block_part`: bytes [offset, offset+size) of the serialized block."""
        offset = _to_integral(query_parameter(uri, "offset") or "", 0, 2**64 - 1)
        if offset is None:
            raise RESTError(400, "Block part offset missing or invalid")
        size = _to_integral(query_parameter(uri, "size") or "", 0, 2**64 - 1)
        if size is None:
            raise RESTError(400, "Block part size missing or invalid")
        return await self._rest_block(part, uri, verbosity=None, block_part=(offset, size))

    async def _rest_block(self, part: str, uri: str, verbosity: int | None,
                          block_part: tuple[int, int] | None = None) -> RESTReply:
        """Core `rest_block`: 404 "<hash> not found" / "not available (not fully downloaded)";
        json is `blockToJSON` (verbosity 3 = SHOW_DETAILS_AND_PREVOUT, 1 = SHOW_TXID)."""
        hash_str, rf = parse_data_format(part)
        bh = _hash_param(hash_str)
        if bh is None:
            raise RESTError(400, f"Invalid hash: {hash_str}")

        def work():
            cs = self._cs()
            entry = cs.get_entry(bh)
            if entry is None:
                raise RESTError(404, f"{hash_str} not found")
            block = cs.get_block(bh)
            if block is None:
                raise RESTError(404, f"{hash_str} not available (not fully downloaded)")
            raw = block.serialize()
            if block_part is not None:
                off, size = block_part
                if size == 0 or off + size > len(raw):
                    raise RESTError(400, f"Bad block part offset/size {off}/{size} for {hash_str}")
                raw = raw[off:off + size]
            if rf == JSON and verbosity is not None:
                return raw, self.methods._block_to_json(block, entry, verbosity)
            return raw, None
        raw, j = await self._w(work)
        if rf in (BIN, HEX):
            return _ok(rf, raw)
        if rf == JSON:
            if verbosity is None:
                raise RESTError(400, "JSON output is not supported for this request type")
            return _ok(JSON, j)
        raise _no_format()

    async def rest_headers(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_headers`: up to `count` (default 5, 1..2000) headers of the active chain
        from <hash> on; a hash off the active chain or unknown gives an empty answer."""
        param, rf = parse_data_format(part)
        path = param.split("/")
        if len(path) == 2:                       # deprecated: /rest/headers/<count>/<hash>
            raw_count, hash_str = path
        elif len(path) == 1:
            hash_str = path[0]
            raw_count = query_parameter(uri, "count")
            raw_count = "5" if raw_count is None else raw_count
        else:
            raise RESTError(400, "Invalid URI format. Expected /rest/headers/<hash>.<ext>?count=<count>")
        count = _to_integral(raw_count, 1, MAX_REST_HEADERS_RESULTS)
        if count is None:
            raise RESTError(400, f"Header count is invalid or out of acceptable range "
                                 f"(1-{MAX_REST_HEADERS_RESULTS}): {raw_count}")
        bh = _hash_param(hash_str)
        if bh is None:
            raise RESTError(400, f"Invalid hash: {hash_str}")

        def work():
            cs = self._cs()
            entries = []
            e = cs.get_entry(bh)
            for _ in range(count):               # bounded by count ≤ 2000
                if e is None or cs.get_block_hash(e.height) != e.hash:
                    break
                entries.append(e)
                nxt = cs.get_block_hash(e.height + 1)
                e = cs.get_entry(nxt) if nxt is not None else None
            if rf == JSON:
                return [self.methods._header_json(x) for x in entries]
            return b"".join(x.header.serialize() for x in entries)
        if rf not in (BIN, HEX, JSON):
            raise _no_format()
        return _ok(rf, await self._w(work))

    async def rest_blockhash_by_height(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_blockhash_by_height`."""
        height_str, rf = parse_data_format(part)
        height = _to_integral(height_str, -2**31, 2**31 - 1)
        if height is None or height < 0:
            raise RESTError(400, f"Invalid height: {_sanitize(height_str)}")

        def work():
            cs = self._cs()
            if height > cs.height:
                raise RESTError(404, "Block height out of range")
            return cs.get_block_hash(height)
        bh = await self._w(work)
        if rf == BIN:
            return _ok(BIN, bytes(bh))
        if rf == HEX:
            return _ok(HEX, hash_to_hex(bh))
        if rf == JSON:
            return _ok(JSON, {"blockhash": hash_to_hex(bh)})
        raise _no_format()

    async def rest_chaininfo(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_chaininfo`: getblockchaininfo's answer."""
        _, rf = parse_data_format(part)
        if rf != JSON:
            raise _no_format("json")
        return _ok(JSON, await self.methods.m_getblockchaininfo())

    async def rest_mempool(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_mempool`: info = getmempoolinfo, contents = getrawmempool (verbose by
        default here, as Core's REST), or {"txids", "mempool_sequence"} with
        mempool_sequence=true (`MempoolToJSON`)."""
        param, rf = parse_data_format(part)
        if param not in ("contents", "info"):
            raise RESTError(400, "Invalid URI format. Expected /rest/mempool/<info|contents>.json")
        mp = self._mempool()
        if rf != JSON:
            raise _no_format("json")
        if param == "info":
            return _ok(JSON, await self.methods.m_getmempoolinfo())
        raw_verbose = query_parameter(uri, "verbose")
        raw_verbose = "true" if raw_verbose is None else raw_verbose
        if raw_verbose not in ("true", "false"):
            raise RESTError(400, 'The "verbose" query parameter must be either "true" or "false".')
        raw_seq = query_parameter(uri, "mempool_sequence")
        raw_seq = "false" if raw_seq is None else raw_seq
        if raw_seq not in ("true", "false"):
            raise RESTError(400, 'The "mempool_sequence" query parameter must be either "true" or "false".')
        verbose, with_seq = raw_verbose == "true", raw_seq == "true"
        if verbose and with_seq:
            raise RESTError(400, 'Verbose results cannot contain mempool sequence values. '
                                 '(hint: set "verbose=false")')
        if not with_seq:
            return _ok(JSON, await self.methods.m_getrawmempool(verbose))
        txids, seq = await self._w(lambda: ([e.tx.txid_hex for e in mp.entries()], mp.sequence))
        return _ok(JSON, {"txids": txids, "mempool_sequence": seq})

    async def rest_getutxos(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_getutxos` (BIP64): outpoints from the URI, or for bin/hex from the body
        (read as Core reads it: the body is first serialized as a length-prefixed string, then
        a bool `checkmempool` and a vector of outpoints are read from that stream). Answers the
        active height and tip, a bitmap of which outpoints are unspent, and those coins
        (`CCoin`: a zero uint32, the height, the output)."""
        param, rf = parse_data_format(part)
        uri_parts = param[1:].split("/") if len(param) > 1 else []
        if not body and not uri_parts:
            raise RESTError(400, "Error: empty request")
        check_mempool = False
        outpoints: list[OutPoint] = []
        parsed = False
        if uri_parts:
            check_mempool = uri_parts[0] == "checkmempool"
            for item in uri_parts[1 if check_mempool else 0:]:
                bits = item.split("-")
                if len(bits) != 2:
                    raise RESTError(400, "Parse error")
                txid = _hash_param(bits[0])
                n = _to_integral(bits[1], 0, 2**32 - 1)
                if txid is None or n is None:
                    raise RESTError(400, "Parse error")
                outpoints.append(OutPoint(txid, n))
            if not outpoints:
                raise RESTError(400, "Error: empty request")
            parsed = True
        if rf in (HEX, BIN):
            data = body
            if rf == HEX:
                data = _parse_hex(body.decode("latin-1"))
            if data:
                if parsed:
                    raise RESTError(400, "Combination of URI scheme inputs and raw post data is not allowed")
                check_mempool, outpoints = _read_getutxos_body(data)
        elif rf == JSON:
            if not parsed:
                raise RESTError(400, "Error: empty request")
        else:
            raise _no_format()
        if len(outpoints) > MAX_GETUTXOS_OUTPOINTS:
            raise RESTError(400, f"Error: max outpoints exceeded (max: {MAX_GETUTXOS_OUTPOINTS}, "
                                 f"tried: {len(outpoints)})")
        mp = self._mempool() if check_mempool else None

        def work():
            cs = self._cs()
            coins = []
            for op in outpoints:
                if mp is not None:
                    c = mp.get_coin(op)
                    if c is not None and op.txid in mp:
                        c = type(c)(c.value, c.script_pubkey, MEMPOOL_HEIGHT, False)
                else:
                    c = cs.get_coin(op)
                coins.append(c)
            return cs.height, cs.tip.hash, coins
        height, tip_hash, coins = await self._w(work)
        bitmap = bytearray((len(coins) + 7) // 8)
        for i, c in enumerate(coins):
            if c is not None:
                bitmap[i // 8] |= 1 << (i % 8)
        hits = [c for c in coins if c is not None]
        if rf in (BIN, HEX):
            out = [struct.pack("<i", height), bytes(tip_hash), ser_var_bytes(bytes(bitmap)),
                   ser_compact_size(len(hits))]
            for c in hits:
                out.append(struct.pack("<IIq", 0, c.height, c.value) + ser_var_bytes(c.script_pubkey))
            return _ok(rf, b"".join(out))
        return _ok(JSON, {
            "chainHeight": height, "chaintipHash": hash_to_hex(tip_hash),
            "bitmap": "".join("1" if c is not None else "0" for c in coins),
            "utxos": [{"height": c.height, "value": _amount(c.value),
                       "scriptPubKey": self._spk_json(c.script_pubkey)} for c in hits]})

    async def rest_spent_txouts(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_spent_txouts`: the outputs each tx of the block spent, from its undo
        record (the coinbase's list is empty)."""
        param, rf = parse_data_format(part)
        path = param.split("/")
        if len(path) != 1:
            raise RESTError(400, "Invalid URI format. Expected /rest/spenttxouts/<hash>.<ext>")
        hash_str = path[0]
        bh = _hash_param(hash_str)
        if bh is None:
            raise RESTError(400, f"Invalid hash: {hash_str}")

        def work():
            cs = self._cs()
            entry = cs.get_entry(bh)
            if entry is None:
                raise RESTError(404, f"{hash_str} not found")
            if entry.height == 0:
                return []
            block = cs.get_block(bh)
            spent = self.methods._block_undo(block, entry)[1] if block is not None else None
            if spent is None:
                raise RESTError(404, f"{hash_str} undo not available")
            return spent
        spent = await self._w(work)
        if rf in (BIN, HEX):
            out = [ser_compact_size(len(spent) + 1), ser_compact_size(0)]
            for coins in spent:
                out.append(ser_compact_size(len(coins)))
                out.extend(struct.pack("<q", c.value) + ser_var_bytes(c.script_pubkey) for c in coins)
            return _ok(rf, b"".join(out))
        if rf == JSON:
            return _ok(JSON, [[]] + [[{"value": _amount(c.value), "scriptPubKey": self._spk_json(c.script_pubkey)}
                                      for c in coins] for coins in spent])
        raise _no_format()

    async def rest_block_filter(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_block_filter` up to its index check: tinynode keeps no block filter index."""
        param, _ = parse_data_format(part)
        parts = param.split("/")
        if len(parts) != 2:
            raise RESTError(400, "Invalid URI format. Expected /rest/blockfilter/<filtertype>/<blockhash>")
        if _hash_param(parts[1]) is None:
            raise RESTError(400, f"Invalid hash: {parts[1]}")
        raise _no_filter_index(parts[0])

    async def rest_filter_header(self, part: str, uri: str, body: bytes) -> RESTReply:
        """Core `rest_filter_header` up to its index check (no block filter index here)."""
        param, _ = parse_data_format(part)
        parts = param.split("/")
        if len(parts) == 3:
            raw_count, raw_hash = parts[1], parts[2]
        elif len(parts) == 2:
            raw_hash = parts[1]
            raw_count = query_parameter(uri, "count")
            raw_count = "5" if raw_count is None else raw_count
        else:
            raise RESTError(400, "Invalid URI format. Expected "
                                 "/rest/blockfilterheaders/<filtertype>/<blockhash>.<ext>?count=<count>")
        if _to_integral(raw_count, 1, MAX_REST_HEADERS_RESULTS) is None:
            raise RESTError(400, f"Header count is invalid or out of acceptable range "
                                 f"(1-{MAX_REST_HEADERS_RESULTS}): {raw_count}")
        if _hash_param(raw_hash) is None:
            raise RESTError(400, f"Invalid hash: {raw_hash}")
        raise _no_filter_index(parts[0])

    def _spk_json(self, spk: bytes) -> dict:
        from .util import _script_pubkey_json
        return _script_pubkey_json(spk, self.node.params)


def _amount(sats: int) -> Any:
    from .util import amount_to_json
    return amount_to_json(sats)


def _no_filter_index(filtertype: str) -> RESTError:
    if filtertype != "basic":                 # Core's BlockFilterTypeByName knows only "basic"
        return RESTError(400, f"Unknown filtertype {filtertype}")
    return RESTError(400, f"Index is not enabled for filtertype {filtertype}")


def _parse_hex(text: str) -> bytes:
    """Core `ParseHex`: pairs of hex digits, whitespace skipped before a pair (not inside
    one); anything else makes the whole input no bytes."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:                      # bounded: i grows every turn
        if text[i] in " \f\n\r\t\v":
            i += 1
            continue
        pair = text[i:i + 2]
        if len(pair) < 2 or any(c not in "0123456789abcdefABCDEF" for c in pair):
            return b""
        out.append(int(pair, 16))
        i += 2
    return bytes(out)


def _read_getutxos_body(data: bytes) -> tuple[bool, list[OutPoint]]:
    """Core's `oss << strRequestMutable; oss >> fCheckMemPool; oss >> vOutPoints;`: the stream
    holds the body as a serialized string (its length first), so the bool is the first byte of
    that length and the outpoint vector starts right after it. Unreadable → 400 Parse error."""
    r = ByteReader(ser_var_bytes(data))
    try:
        check = r.u8() != 0
        n = r.compact_size()
        if n * 36 > r.remaining():
            raise DecodeError("short")
        ops = [OutPoint(r.read(32), r.u32()) for _ in range(n)]
    except DecodeError:
        raise RESTError(400, "Parse error") from None
    return check, ops
