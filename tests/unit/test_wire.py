"""Wire codec: every message round-trips, truncation and over-counts raise DecodeError, and the
envelope checks run in btcd's order (wire/message.go readMessageWithEncodingNInternal)."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from tinynode.params import REGTEST
from tinynode.primitives.hashes import ZERO_HASH, hex_to_hash, sha256d
from tinynode.primitives.serialize import DecodeError, ser_compact_size
from tinynode.wire import (
    HEADER_SIZE,
    MAX_ADDR,
    MAX_HEADERS,
    MAX_INV,
    MAX_LOCATOR,
    MAX_PROTOCOL_MESSAGE_LENGTH,
    MAX_USER_AGENT_LENGTH,
    MESSAGE_TYPES,
    MIN_PEER_PROTO_VERSION,
    NODE_NETWORK,
    PROTOCOL_VERSION,
    USER_AGENT,
    Addr,
    BadChecksumError,
    BadCommandError,
    BadMagicError,
    BlockMsg,
    FrameDecoder,
    GetAddr,
    GetBlocks,
    GetData,
    GetHeaders,
    Headers,
    Inv,
    InvType,
    InvVect,
    MemPool,
    MessageHeader,
    NetAddr,
    NotFound,
    OversizeError,
    PayloadDecodeError,
    Ping,
    Pong,
    Reject,
    SendHeaders,
    TimedAddr,
    TxMsg,
    Verack,
    Version,
    WireError,
    bytes_to_ip,
    checksum,
    decode_message,
    decode_payload,
    encode,
    encode_raw,
    ip_to_bytes,
    parse_header,
)

MAGIC = REGTEST.magic
GENESIS = REGTEST.genesis
H1 = bytes(range(32))
H2 = bytes(range(32, 64))


def _version(relay: bool | None = True, ua: str = USER_AGENT) -> Version:
    return Version(PROTOCOL_VERSION, NODE_NETWORK, 1_700_000_000,
                   NetAddr.from_host("127.0.0.1", 18444), NetAddr.from_host("::1", 18445),
                   0x1122334455667788, ua, 150, relay)


SAMPLES = [
    _version(),
    _version(relay=False),
    _version(relay=None),
    Verack(),
    Ping(0),
    Ping(2**64 - 1),
    Pong(0xDEADBEEF),
    Addr(()),
    Addr([TimedAddr(1_700_000_000, NetAddr.from_host("10.0.0.1", 8333)),
          TimedAddr(0xFFFFFFFF, NetAddr.from_host("2001:db8::1", 18444, services=0x409))]),
    GetAddr(),
    Inv([InvVect(InvType.TX, H1), InvVect(InvType.BLOCK, H2)]),
    Inv(()),
    GetData([InvVect(InvType.WITNESS_BLOCK, H1), InvVect(7, H2)]),
    NotFound([InvVect(InvType.TX, H2)]),
    GetHeaders([H1, H2], H2),
    GetHeaders([]),
    GetBlocks([H1], version=31800),
    Headers(()),
    Headers([GENESIS.header, GENESIS.header]),
    BlockMsg(GENESIS),
    TxMsg(GENESIS.txs[0]),
    MemPool(),
    SendHeaders(),
    Reject("tx", 0x10, "bad-txns-inputs-missingorspent", H1),
    Reject("version", 0x11, "obsolete"),
]


def _ids(samples):
    return [f"{i}-{type(m).__name__}" for i, m in enumerate(samples)]


# ------------------------------------------------------------------------------------------
# Constants


def test_constants():
    assert PROTOCOL_VERSION == 70015
    assert MIN_PEER_PROTO_VERSION == 31800
    assert NODE_NETWORK == 1
    assert USER_AGENT == "/tinynode:0.1/"
    assert (MAX_PROTOCOL_MESSAGE_LENGTH, MAX_INV, MAX_HEADERS, MAX_ADDR, MAX_LOCATOR) == (
        4_000_000, 50_000, 2_000, 1_000, 101)
    assert [InvType.ERROR, InvType.TX, InvType.BLOCK, InvType.FILTERED_BLOCK, InvType.CMPCT_BLOCK] == [0, 1, 2, 3, 4]
    assert InvType.WITNESS_TX == 0x40000001 and InvType.WITNESS_BLOCK == 0x40000002


def test_registry_is_static_and_complete():
    assert sorted(MESSAGE_TYPES) == sorted([
        "version", "verack", "ping", "pong", "addr", "getaddr", "inv", "getdata", "notfound",
        "getheaders", "getblocks", "headers", "block", "tx", "mempool", "sendheaders", "reject",
        "wtxidrelay", "addrv2", "sendaddrv2"])
    for command, cls in MESSAGE_TYPES.items():
        assert cls.COMMAND == command
        assert 0 <= cls.MAX_PAYLOAD <= MAX_PROTOCOL_MESSAGE_LENGTH
    with pytest.raises(TypeError):
        MESSAGE_TYPES["feefilter"] = Ping  # type: ignore[index]
    for name in ("feefilter", "sendcmpct"):
        assert name not in MESSAGE_TYPES


# ------------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("msg", SAMPLES, ids=_ids(SAMPLES))
def test_round_trip(msg):
    payload = msg.serialize()
    assert len(payload) <= msg.MAX_PAYLOAD
    again = type(msg).from_payload(payload)
    assert again == msg and type(msg).from_bytes(payload) == msg
    assert again.serialize() == payload
    wire = encode(MAGIC, msg)
    header, decoded, used = decode_message(MAGIC, wire)
    assert used == len(wire) == HEADER_SIZE + len(payload)
    assert header == MessageHeader(msg.COMMAND, len(payload), sha256d(payload)[:4])
    assert decoded == msg
    text = repr(msg)
    assert text.startswith(type(msg).__name__) and len(text) < 300


def test_messages_are_frozen_and_slotted():
    msg = Ping(1)
    with pytest.raises(AttributeError):
        msg.nonce = 2  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        msg.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(msg, "__dict__")
    assert Verack() == Verack() and Verack() != GetAddr()


def test_repr_uses_display_hex():
    assert repr(Inv([InvVect(InvType.BLOCK, H1)])) == f"Inv([block:{H1[::-1].hex()}])"
    assert repr(InvVect(InvType.BLOCK, hex_to_hash("00" * 31 + "ff"))) == "block:" + "00" * 31 + "ff"
    assert repr(BlockMsg(GENESIS)).startswith(f"BlockMsg({GENESIS.hash_hex}")
    assert repr(InvVect(99, H1)).startswith("type99:")


# ------------------------------------------------------------------------------------------
# Known byte vectors


def test_version_vector_btcd_bip37():
    """btcd wire/msgversion_test.go baseVersionBIP0037Encoded (field values checked by hand)."""
    payload = bytes.fromhex(
        "71110100"                                  # protocol 70001
        "0100000000000000"                          # NODE_NETWORK
        "29ab5f4900000000"                          # timestamp 0x495fab29
        "0100000000000000" "00000000000000000000ffffc0a80001" "208d"   # addr_recv 192.168.0.1:8333
        "0100000000000000" "00000000000000000000ffff7f000001" "208d"   # addr_from 127.0.0.1:8333
        "f3e0010000000000"                          # nonce 123123
        "10" + b"/dcrdtest:0.0.1/".hex() +          # user agent
        "fa920300"                                  # start height 234234
        "01")                                       # relay
    msg = Version.from_payload(payload)
    assert msg == Version(70001, 1, 0x495FAB29, NetAddr.from_host("192.168.0.1", 8333),
                          NetAddr.from_host("127.0.0.1", 8333), 123123, "/dcrdtest:0.0.1/", 234234, True)
    assert msg.addr_recv.host == "192.168.0.1" and msg.addr_from.port == 8333
    assert msg.serialize() == payload
    # Without the BIP 37 relay byte (btcd's baseVersionEncoded at protocol 60002): relay is None.
    old = Version.from_payload(b"\x62\xea\x00\x00" + payload[4:-1])
    assert old.version == 60002 and old.relay is None
    assert old.serialize() == b"\x62\xea\x00\x00" + payload[4:-1]


def test_verack_and_empty_checksum_vector():
    # sha256d("")[:4] = 5df6e0e2; mainnet magic f9beb4d9: Core's verack as seen on the wire.
    assert checksum(b"") == bytes.fromhex("5df6e0e2")
    wire = encode(bytes.fromhex("f9beb4d9"), Verack())
    assert wire.hex() == "f9beb4d9" + b"verack".hex() + "00" * 6 + "00000000" + "5df6e0e2"


def test_version_max_payload_is_exact():
    msg = _version(ua="x" * MAX_USER_AGENT_LENGTH)
    assert len(msg.serialize()) == Version.MAX_PAYLOAD
    too_long = msg.serialize()[:80] + ser_compact_size(257) + b"x" * 257 + msg.serialize()[-5:]
    with pytest.raises(DecodeError):
        Version.from_payload(too_long)


def test_version_relay_nonzero_byte_is_true_and_create_defaults():
    payload = _version(relay=False).serialize()[:-1] + b"\x02"
    assert Version.from_payload(payload).relay is True
    v = Version.create(nonce=7, start_height=9, timestamp=123)
    assert (v.version, v.services, v.user_agent, v.relay, v.start_height) == (
        70015, NODE_NETWORK, USER_AGENT, True, 9)


def test_user_agent_arbitrary_bytes_round_trip():
    payload = _version().serialize()
    ua = b"\xff\xfe/odd\x00ua/"
    start = 4 + 8 + 8 + 26 + 26 + 8
    mangled = payload[:start] + ser_compact_size(len(ua)) + ua + payload[start + 1 + len(USER_AGENT):]
    msg = Version.from_payload(mangled)
    assert msg.serialize() == mangled


def test_headers_layout_and_nonzero_tx_count():
    payload = Headers([GENESIS.header]).serialize()
    assert payload == b"\x01" + GENESIS.header.serialize() + b"\x00"
    with pytest.raises(DecodeError, match="tx count"):
        Headers.from_payload(payload[:-1] + b"\x01")


def test_getheaders_layout():
    payload = GetHeaders([H1], H2).serialize()
    assert payload == struct.pack("<I", PROTOCOL_VERSION) + b"\x01" + H1 + H2
    assert GetHeaders([H1]).hash_stop == ZERO_HASH


def test_inv_layout_and_flags():
    payload = Inv([InvVect(InvType.WITNESS_TX, H1)]).serialize()
    assert payload == b"\x01" + bytes.fromhex("01000040") + H1
    item = Inv.from_payload(payload).items[0]
    assert item.is_tx and not item.is_block and item.base_type == InvType.TX
    assert InvVect(InvType.WITNESS_BLOCK, H1).is_block


def test_reject_partial_data_is_an_error():
    payload = Reject("block", 0x10, "bad-blk", H1).serialize()
    with pytest.raises(DecodeError):
        Reject.from_payload(payload[:-1])
    with pytest.raises(DecodeError):
        Reject.from_payload(payload + b"\x00")


def test_netaddr_helpers():
    assert ip_to_bytes("1.2.3.4") == bytes(10) + b"\xff\xff\x01\x02\x03\x04"
    assert ip_to_bytes("::1") == bytes(15) + b"\x01"
    assert ip_to_bytes("[2001:db8::1]") == ip_to_bytes("2001:db8::1")
    assert bytes_to_ip(ip_to_bytes("192.168.0.1")) == "192.168.0.1"
    assert bytes_to_ip(ip_to_bytes("2001:db8::1")) == "2001:db8::1"
    with pytest.raises(ValueError):
        ip_to_bytes("example.com")
    with pytest.raises(ValueError):
        bytes_to_ip(b"\x00" * 4)
    a = NetAddr.from_host("10.1.2.3", 18444)
    assert a.serialize() == struct.pack("<Q", NODE_NETWORK) + ip_to_bytes("10.1.2.3") + b"\x48\x0c"
    assert a.is_ipv4 and a.host == "10.1.2.3"
    assert repr(NetAddr.from_host("::1", 1)) == "NetAddr([::1]:1, services=0x1)"


def test_serialize_refuses_over_limit_values():
    with pytest.raises(ValueError):
        Inv([InvVect(1, H1)] * (MAX_INV + 1)).serialize()
    with pytest.raises(ValueError):
        GetHeaders([H1] * (MAX_LOCATOR + 1)).serialize()
    with pytest.raises(ValueError):
        encode_raw(MAGIC, "thirteenchars", b"")


# ------------------------------------------------------------------------------------------
# Truncation and trailing bytes


@pytest.mark.parametrize("msg", [m for m in SAMPLES if m.serialize()], ids=_ids([m for m in SAMPLES if m.serialize()]))
def test_truncation_at_every_byte_raises_decode_error(msg):
    payload = msg.serialize()
    cls = type(msg)
    checked = 0
    for cut in range(len(payload)):
        if isinstance(msg, Version) and msg.relay is not None and cut == len(payload) - 1:
            assert cls.from_payload(payload[:cut]).relay is None
            continue
        if isinstance(msg, Reject) and msg.data is not None and cut == len(payload) - 32:
            assert cls.from_payload(payload[:cut]).data is None
            continue
        with pytest.raises(DecodeError):
            cls.from_payload(payload[:cut])
        checked += 1
    assert checked >= len(payload) - 1


@pytest.mark.parametrize("msg", SAMPLES, ids=_ids(SAMPLES))
def test_trailing_bytes_raise_decode_error(msg):
    payload = msg.serialize()
    if isinstance(msg, Version) and msg.relay is None:
        payload += b"\x01"  # now it has a relay byte; one more is trailing
    if isinstance(msg, Reject) and msg.data is None:
        payload += H1
    if isinstance(msg, BlockMsg):
        # Core's "block" handler reads the block and leaves the rest of the message unread
        assert type(msg).from_payload(payload + b"\x00" * 6).block.hash == msg.block.hash
        return
    with pytest.raises(DecodeError):
        type(msg).from_payload(payload + b"\x00")


def test_empty_messages_refuse_any_payload():
    for cls in (Verack, GetAddr, MemPool, SendHeaders):
        assert cls.MAX_PAYLOAD == 0
        with pytest.raises(DecodeError):
            cls.from_payload(b"\x00")


# ------------------------------------------------------------------------------------------
# Over-count inputs: as Core, a count is bounded by the bytes left (never allocated beyond
# them); the protocol limits are the handlers' (Misbehaving "<type> message size = N")


OVER_COUNT = [
    (Inv, MAX_INV), (GetData, MAX_INV), (NotFound, MAX_INV), (Headers, MAX_HEADERS), (Addr, MAX_ADDR),
]


@pytest.mark.parametrize("cls,limit", OVER_COUNT, ids=[c.__name__ for c, _ in OVER_COUNT])
def test_over_count_decodes_for_the_handler_to_judge(cls, limit):
    entry, field = {
        Headers: (GENESIS.header.serialize() + b"\x00", "headers"),
        Addr: (TimedAddr(1, NetAddr.from_host("1.2.3.4", 1)).serialize(), "addrs"),
    }.get(cls, (InvVect(InvType.TX, H1).serialize(), "items"))
    # limit + 1 well-formed entries decode (Core reads the vector, then the handler counts)
    assert len(getattr(cls.from_payload(ser_compact_size(limit + 1) + entry * (limit + 1)), field)) == limit + 1
    assert len(getattr(cls.from_payload(ser_compact_size(limit) + entry * limit), field)) == limit
    with pytest.raises(DecodeError, match="too short"):
        cls.from_payload(ser_compact_size(limit + 1) + b"\x00" * 40)
    with pytest.raises(DecodeError):       # over MAX_SIZE (Core ReadCompactSize "size too large")
        cls.from_payload(ser_compact_size(2**64 - 1))
    with pytest.raises(DecodeError, match="too short"):
        cls.from_payload(ser_compact_size(limit) + b"\x00" * 40)


@pytest.mark.parametrize("cls", [GetHeaders, GetBlocks])
def test_locator_count_is_bounded_by_the_payload(cls):
    long = cls.from_payload(struct.pack("<I", PROTOCOL_VERSION) + ser_compact_size(MAX_LOCATOR + 1) + H1 * 103)
    assert len(long.locator) == MAX_LOCATOR + 1     # the handler disconnects (Core)
    with pytest.raises(DecodeError, match="too short"):
        cls.from_payload(struct.pack("<I", PROTOCOL_VERSION) + ser_compact_size(MAX_LOCATOR + 1) + H1 * 3)
    with pytest.raises(DecodeError, match="too short"):
        cls.from_payload(struct.pack("<I", PROTOCOL_VERSION) + ser_compact_size(MAX_LOCATOR) + H1 * 3)
    full = cls([H1] * MAX_LOCATOR).serialize()
    assert len(full) == cls.MAX_PAYLOAD
    assert len(cls.from_payload(full).locator) == MAX_LOCATOR


def test_full_sized_lists_at_the_limit_decode():
    inv = Inv([InvVect(InvType.TX, H1)] * MAX_INV)
    payload = inv.serialize()
    assert len(payload) == Inv.MAX_PAYLOAD
    assert Inv.from_payload(payload) == inv
    hdrs = Headers([GENESIS.header] * MAX_HEADERS).serialize()
    assert len(hdrs) == Headers.MAX_PAYLOAD
    addr = Addr([TimedAddr(1, NetAddr.from_host("1.2.3.4", 1))] * MAX_ADDR).serialize()
    assert len(addr) == Addr.MAX_PAYLOAD


def test_huge_claimed_counts_allocate_nothing():
    """A short payload claiming a huge count is refused before any list is built."""
    cases = [
        (Inv, ser_compact_size(MAX_INV) + H1),
        (Headers, ser_compact_size(MAX_HEADERS) + H1),
        (Addr, ser_compact_size(MAX_ADDR) + H1),
        (BlockMsg, GENESIS.header.serialize() + ser_compact_size(0x02000000)),
        (TxMsg, b"\x01\x00\x00\x00" + b"\xfe\xff\xff\xff\x01"),
    ]
    tracemalloc.start()
    try:
        for cls, payload in cases:
            tracemalloc.reset_peak()
            with pytest.raises(DecodeError):
                cls.from_payload(payload)
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 64_000, (cls.__name__, peak)
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------------
# Envelope: checks in btcd's order


def _header(magic=MAGIC, command=b"ping", length=8, cs=b"\x00" * 4) -> bytes:
    return magic + command.ljust(12, b"\x00") + struct.pack("<I", length) + cs


def test_magic_is_checked_before_the_length():
    """Core V1Transport::readHeader: magic, then the length; Core's log text in the error."""
    data = _header(magic=b"XXXX", command=b"\x01bad", length=MAX_PROTOCOL_MESSAGE_LENGTH + 1)
    with pytest.raises(BadMagicError) as e:
        parse_header(MAGIC, data)
    assert e.value.kind == "bad-magic"
    assert str(e.value) == "Header error: Wrong MessageStart 58585858 received"
    with pytest.raises(OversizeError) as e:
        parse_header(MAGIC, _header(command=b"badmsg\x01", length=MAX_PROTOCOL_MESSAGE_LENGTH + 1))
    assert e.value.kind == "oversize"
    assert str(e.value) == "Header error: Size too large (badmsg, 4000001 bytes)"
    # 4,000,000 exactly is allowed, for every message (no per-message cap, as Core)
    assert parse_header(MAGIC, _header(command=b"block", length=MAX_PROTOCOL_MESSAGE_LENGTH)).length == 4_000_000
    assert parse_header(MAGIC, _header(command=b"ping", length=9)).length == 9


@pytest.mark.parametrize("field", [
    b"ver\x00sion", b"\x01abc", b"ping\x7f", b"", b"caf\xc3\xa9", b"a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00b",
])
def test_bad_command_charset_is_found_after_the_checksum(field):
    header = parse_header(MAGIC, _header(command=field, length=0))
    assert not header.valid
    with pytest.raises(BadChecksumError):
        decode_payload(header.command, b"", b"\x00" * 4)
    with pytest.raises(BadCommandError) as e:
        decode_payload(header.command, b"", checksum(b""))
    assert e.value.kind == "bad-command"
    assert str(e.value).startswith("Header error: Invalid message type (")


def test_core_checksum_text():
    with pytest.raises(BadChecksumError) as e:
        decode_payload("badmsg\x01", b"\x01d", b"\xff" * 4)
    assert str(e.value) == "Header error: Wrong checksum (badmsg, 2 bytes), expected 78df0a04 was ffffffff"


@pytest.mark.parametrize("name", ["feefilter", "sendcmpct", "abcdefghijkl", "a b~"])
def test_unknown_command_is_reported_not_an_error(name):
    header = parse_header(MAGIC, _header(command=name.encode(), length=MAX_PROTOCOL_MESSAGE_LENGTH))
    assert header.command == name and not header.known and header.message_type is None
    # Its payload is checksummed (Core), then dropped undecoded.
    assert decode_payload(name, b"garbage", checksum(b"garbage")) is None
    with pytest.raises(BadChecksumError):
        decode_payload(name, b"garbage", b"\x00\x00\x00\x00")


def test_no_per_message_cap_in_the_envelope():
    header = parse_header(MAGIC, _header(command=b"inv", length=Inv.MAX_PAYLOAD + 1))
    command, length, cs = header  # unpacks as the contract's tuple
    assert (command, length, header.known, header.message_type) == ("inv", Inv.MAX_PAYLOAD + 1, True, Inv)
    with pytest.raises(PayloadDecodeError):   # a 9-byte ping: trailing bytes after its nonce
        decode_payload("ping", bytes(9), checksum(bytes(9)))


def test_header_must_be_24_bytes():
    with pytest.raises(WireError):
        parse_header(MAGIC, _header()[:23])


def test_checksum_then_decode_then_trailing():
    payload = Ping(5).serialize()
    with pytest.raises(BadChecksumError) as e:
        decode_payload("ping", payload, b"\x00\x00\x00\x00")
    assert e.value.kind == "bad-checksum"
    # Bad checksum is reported even when the payload would not decode either.
    with pytest.raises(BadChecksumError):
        decode_payload("ping", b"\x01", b"\x00\x00\x00\x00")
    with pytest.raises(PayloadDecodeError) as e:
        decode_payload("ping", b"\x01", checksum(b"\x01"))
    assert e.value.kind == "decode" and e.value.command == "ping"
    with pytest.raises(PayloadDecodeError, match="trailing"):
        decode_payload("headers", b"\x00\x00", checksum(b"\x00\x00"))
    assert decode_payload("ping", payload, checksum(payload)) == Ping(5)
    assert isinstance(PayloadDecodeError("x"), DecodeError)


def test_encode_raw_can_lie():
    wire = encode_raw(MAGIC, "ping", b"\x00" * 8, checksum_override=b"\x01\x02\x03\x04", length_override=9)
    assert wire[16:20] == struct.pack("<I", 9) and wire[20:24] == b"\x01\x02\x03\x04"
    assert encode_raw(MAGIC, b"ping", Ping(3).serialize()) == encode(MAGIC, Ping(3))


def test_frame_decoder_incremental():
    stream = b"".join(encode(MAGIC, m) for m in SAMPLES) + encode_raw(MAGIC, "sendcmpct", b"\x00" * 9)
    dec = FrameDecoder(MAGIC)
    got = []
    for i in range(0, len(stream), 7):
        dec.feed(stream[i:i + 7])
        while (item := dec.next()) is not None:
            got.append(item)
    assert [m for _, m in got[:-1]] == SAMPLES
    assert got[-1][0].command == "sendcmpct" and got[-1][1] is None
    assert dec.buffered() == 0
    assert decode_message(MAGIC, encode(MAGIC, Ping(1))[:-1]) is None


def test_frame_decoder_raises_header_error_before_payload_arrives():
    dec = FrameDecoder(MAGIC)
    dec.feed(_header(command=b"block", length=MAX_PROTOCOL_MESSAGE_LENGTH + 1))
    with pytest.raises(OversizeError):
        dec.next()


# ------------------------------------------------------------------------------------------
# More hostile inputs


def test_max_length_field_is_oversize():
    with pytest.raises(OversizeError):
        parse_header(MAGIC, _header(command=b"inv", length=0xFFFFFFFF))
    with pytest.raises(OversizeError):
        parse_header(MAGIC, _header(command=b"sendcmpct", length=MAX_PROTOCOL_MESSAGE_LENGTH + 1))


def test_lookalike_commands_are_unknown_not_known():
    for field in (b"ping ", b"PING", b" ping", b"version\x20"):
        header = parse_header(MAGIC, _header(command=field, length=8))
        assert not header.known


def test_non_canonical_counts_raise():
    with pytest.raises(DecodeError):
        Inv.from_payload(b"\xfd\x01\x00" + InvVect(1, H1).serialize())
    with pytest.raises(DecodeError):
        Headers.from_payload(b"\x01" + GENESIS.header.serialize() + b"\xfd\x00\x00")
    with pytest.raises(DecodeError):
        GetHeaders.from_payload(struct.pack("<I", 1) + b"\xfe\x01\x00\x00\x00" + H1 + H2)


def test_version_huge_user_agent_claim():
    head = _version().serialize()[:80]
    for claim in (ser_compact_size(MAX_USER_AGENT_LENGTH + 1), ser_compact_size(2**32 - 1), b"\xff" * 9):
        with pytest.raises(DecodeError):
            Version.from_payload(head + claim + b"x" * 300 + bytes(5))


def test_frame_decoder_good_then_bad():
    dec = FrameDecoder(MAGIC)
    dec.feed(encode(MAGIC, Ping(1)) + encode(b"\x0b\x11\x09\x07", Ping(2)))
    assert dec.next()[1] == Ping(1)
    with pytest.raises(BadMagicError):
        dec.next()


def test_frame_decoder_bad_checksum_and_trailing_bytes():
    dec = FrameDecoder(MAGIC)
    dec.feed(encode_raw(MAGIC, "pong", bytes(8), checksum_override=b"\xff" * 4))
    with pytest.raises(BadChecksumError):
        dec.next()
    dec = FrameDecoder(MAGIC)
    dec.feed(encode_raw(MAGIC, "verack", b""))  # fine
    dec.feed(encode_raw(MAGIC, "getaddr", b"", length_override=0))
    assert dec.next()[1] == Verack() and dec.next()[1] == GetAddr()
    dec.feed(encode_raw(MAGIC, "pong", bytes(8))[:24] + bytes(8))
    assert dec.next()[1] == Pong(0)
    with pytest.raises(PayloadDecodeError, match="trailing"):  # 9-byte pong
        decode_message(MAGIC, encode_raw(MAGIC, "pong", bytes(9)))
    with pytest.raises(PayloadDecodeError, match="trailing"):
        decode_message(MAGIC, encode_raw(MAGIC, "inv", b"\x00\x00"))


def test_segwit_tx_is_a_decode_error():
    # marker 0x00, flag 0x01: we speak legacy serialization only (no NODE_WITNESS).
    with pytest.raises(PayloadDecodeError):
        decode_payload("tx", b"\x01\x00\x00\x00\x00\x01" + bytes(10), checksum(b"\x01\x00\x00\x00\x00\x01" + bytes(10)))
