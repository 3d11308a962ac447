"""BIP155 addresses and the `addrv2` / `sendaddrv2` messages (tinynode.wire.netaddress, messages).

The vectors are Bitcoin Core's src/test/net_tests.cpp (cnetaddr_serialize_v1 / _v2,
cnetaddr_unserialize_v2, cnetaddr_basic's SetSpecial cases) and the raw payloads of
test/functional/p2p_invalid_messages.py's addrv2 sub-tests.
"""

from __future__ import annotations

import pytest

from tinynode.primitives.serialize import ByteReader, DecodeError
from tinynode.wire import envelope
from tinynode.wire import messages as m
from tinynode.wire.constants import MAX_ADDR
from tinynode.wire.netaddress import (
    INVALID_ADDRESS,
    BIP155Network,
    NetAddress,
    network_name,
    parse_host,
)

TORV3 = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"
I2P = "ukeu3k5oycgaauneqgtnvselmt4yemvoilkln7jpvamvfx7dnkdq.b32.i2p"


def read_v2(hexstr: str) -> tuple[NetAddress, int]:
    r = ByteReader(bytes.fromhex(hexstr))
    a = NetAddress.read_v2(r)
    return a, r.remaining()


# ---------------------------------------------------------------- Core net_tests.cpp


@pytest.mark.parametrize("host,v1,v2", [
    ("1.2.3.4", "00000000000000000000ffff01020304", "010401020304"),
    ("1a1b:2a2b:3a3b:4a4b:5a5b:6a6b:7a7b:8a8b", "1a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b",
     "02101a1b2a2b3a3b4a4b5a5b6a6b7a7b8a8b"),
    ("kpgvmscirrdqpekbqjsvw5teanhatztpp2gl6eee4zkowvwfxwenqaid.onion", "00" * 16,
     "042053cd5648488c4707914182655b7664034e09e66f7e8cbf1084e654eb56c5bd88"),
])
def test_core_serialize_v1_and_v2(host, v1, v2):
    a = parse_host(host)
    assert a.v1_bytes.hex() == v1 and a.serialize_v2().hex() == v2
    assert read_v2(v2) == (a, 0) and a.host == host


def test_core_default_address_serializes_as_zero_ipv6():
    assert INVALID_ADDRESS.v1_bytes == bytes(16)
    assert INVALID_ADDRESS.serialize_v2().hex() == "021000000000000000000000000000000000"
    assert not INVALID_ADDRESS.is_valid


@pytest.mark.parametrize("hexstr,host,network,v1_compatible", [
    ("010401020304", "1.2.3.4", "ipv4", True),
    ("02100102030405060708090a0b0c0d0e0f10", "102:304:506:708:90a:b0c:d0e:f10", "ipv6", True),
    ("042079bcc625184b05194975c28b66b66b0469f7f6556fb1ac3189a79b40dda32f1f", TORV3, "onion", False),
    ("0520a2894dabaec08c0051a481a6dac88b64f98232ae42d4b6fd2fa81952dfe36a87", I2P, "i2p", False),
    ("0610fc000001000200030004000500060007", "fc00:1:2:3:4:5:6:7", "cjdns", False),
])
def test_core_unserialize_v2_valid(hexstr, host, network, v1_compatible):
    a, left = read_v2(hexstr)
    assert left == 0 and a.is_valid and a.host == host and a.network_name == network
    assert a.is_addr_v1_compatible is v1_compatible


@pytest.mark.parametrize("hexstr,reason", [
    ("01040102", "end of data"),
    ("010501020304", "BIP155 IPv4 address with length 5 (should be 4)"),
    ("01fd010201020304", "Address too long: 513 > 512"),
    ("020400", "BIP155 IPv6 address with length 4 (should be 16)"),
    ("040000", "BIP155 TORv3 address with length 0 (should be 32)"),
    ("050300", "BIP155 I2P address with length 3 (should be 32)"),
    ("060100", "BIP155 CJDNS address with length 1 (should be 16)"),
    ("aafe0000000201020304050607", "Address too long: 33554432 > 512"),
])
def test_core_unserialize_v2_errors(hexstr, reason):
    with pytest.raises(DecodeError) as e:
        read_v2(hexstr)
    assert reason in str(e.value)


@pytest.mark.parametrize("hexstr", [
    "021000000000000000000000ffff01020304",     # IPv4 embedded in IPv6
    "0210fd87d87eeb430102030405060708090a",     # TORv2 embedded in IPv6
    "030af1f2f3f4f5f6f7f8f9fa",                 # TORv2: no longer supported
    "aa0401020304",                             # unknown network, read and ignored
    "aa00",                                     # unknown network, zero length
])
def test_core_unserialize_v2_ignored_entries_read_as_invalid(hexstr):
    assert read_v2(hexstr) == (INVALID_ADDRESS, 0)


def test_core_cjdns_with_the_wrong_prefix_is_invalid():
    a, left = read_v2("0610aa000001000200030004000500060007")
    assert left == 0 and a.network == BIP155Network.CJDNS and not a.is_valid


def test_core_set_special_names():
    assert parse_host(TORV3).network_name == "onion"
    assert parse_host("UDHDrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.I2P").host == \
        "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna.b32.i2p"
    for bad in ("6hzph5hv6337r6p2.onion",                                             # TORv2
                "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.onion",      # checksum
                "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscrye.onion",      # version
                "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd\0wtf.onion",
                "mfrggzak.onion", "mf*g zak.onion",
                "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jn=.b32.i2p",
                "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v4jna=.b32.i2p",
                "udhdrtrcetjm5sxzskjyr5ztpeszydbh4dpl3pl4utgqqw2v\0wtf.b32.i2p",
                "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscsad.b32.i2p",  # 56 chars
                "tp*szydbh4dp.b32.i2p", "example.com"):
        with pytest.raises(ValueError):
            parse_host(bad)
        assert network_name(bad) is None


def test_ipv4_mapped_text_reads_as_ipv4():
    assert parse_host("::ffff:1.2.3.4") == parse_host("1.2.3.4")
    assert parse_host("[2001:db8::1]").network_name == "ipv6"


# ---------------------------------------------------------------- addrv2 message


def test_p2p_invalid_messages_payloads():
    """The four raw payloads of Core's p2p_invalid_messages addrv2 sub-tests."""
    with pytest.raises(DecodeError, match="end of data"):
        m.AddrV2.from_payload(b"")
    assert m.AddrV2.from_payload(bytes.fromhex("00")) == m.AddrV2(())
    too_long = bytes.fromhex("01" "61bc6649" "00" "01" "fd0102" + "ab" * 513 + "208d")
    assert len(too_long) == 525
    with pytest.raises(DecodeError, match="Address too long: 513 > 512"):
        m.AddrV2.from_payload(too_long)
    unknown = bytes.fromhex("02" "00000000" "01" "99" "02" "abab" "208d"
                            "00000000" "01" "01" "04" "09090909" "208d")
    msg = m.AddrV2.from_payload(unknown)
    assert [(e.addr.host, e.addr.port, e.addr.services) for e in msg.addrs] == \
        [("::", 8333, 1), ("9.9.9.9", 8333, 1)]


def test_addrv2_round_trip_all_networks_and_big_services():
    entries = [m.timed_addr(1_700_000_000, h, 8333, s, v2=True)
               for h, s in (("1.2.3.4", 1), ("2001:db8::1", 0x409), (TORV3, 2**64 - 1), (I2P, 0))]
    msg = m.AddrV2(entries)
    payload = msg.serialize()
    again = envelope.decode_payload("addrv2", payload, envelope.checksum(payload))
    assert again == msg and [e.addr.host for e in again.addrs] == ["1.2.3.4", "2001:db8::1", TORV3, I2P]
    # services are a compact size: 1 takes one byte, 2**64-1 nine
    assert payload[1 + 4:1 + 4 + 1] == b"\x01"
    assert entries[2].serialize()[4:4 + 9] == b"\xff" * 9


def test_addrv2_services_compact_size_must_be_canonical():
    with pytest.raises(DecodeError, match="non-canonical ReadCompactSize"):
        m.AddrV2.from_payload(bytes.fromhex("01" "00000000" "fd0100" "010401020304" "208d"))


def test_addrv2_count_beyond_the_payload_is_end_of_data_and_over_1000_parses():
    entry = m.timed_addr(1, "9.9.9.9", 1, 1, v2=True).serialize()
    with pytest.raises(DecodeError, match="end of data"):
        m.AddrV2.from_payload(b"\xfe\x00\x00\x00\x02" + entry * 3)
    # the 1,000 limit is the handler's (Misbehaving "addrv2 message size = 1001")
    big = m.AddrV2.from_payload(b"\xfd\xe9\x03" + entry * (MAX_ADDR + 1))
    assert len(big.addrs) == MAX_ADDR + 1


def test_addr_v1_cannot_carry_bip155_only_networks():
    with pytest.raises(ValueError):
        m.timed_addr(1, TORV3, 8333, 1, v2=False)
    assert isinstance(m.addr_message([m.timed_addr(1, "1.2.3.4", 1, 1, v2=False)], v2=False), m.Addr)
    assert isinstance(m.addr_message([], v2=True), m.AddrV2)


def test_sendaddrv2_is_empty_and_known():
    assert m.SendAddrV2().serialize() == b""
    assert envelope.decode_payload("sendaddrv2", b"", envelope.checksum(b"")) == m.SendAddrV2()
    with pytest.raises(envelope.PayloadDecodeError):
        envelope.decode_payload("sendaddrv2", b"\x00", envelope.checksum(b"\x00"))
