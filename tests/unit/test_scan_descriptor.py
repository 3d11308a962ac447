"""Fixed-key descriptors to scripts (tinynode.script.scan_descriptor), checked against Bitcoin
Core's src/test/descriptor_tests.cpp: the same key (L4rK1y… = 03a34b99…, whose WIF is re-encoded
for regtest here) gives the same scripts; errors are Core's sentences."""

import pytest

from tinynode.params import get_params
from tinynode.script.descriptor import add_checksum, descriptor_checksum
from tinynode.script.scan_descriptor import DescriptorError, check_checksum, expand_descriptor

P = get_params("regtest")
KEY = "03a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd"
XONLY = KEY[2:]
WIF = "cVDJUtDjdaM25yNVVDLLX3hcHUfth4c7tY3rSc4hy9e8ibtCuj6G"        # regtest WIF of the same secret
UNCOMPRESSED = ("04a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bd5b8dec5235a0fa8722476c"
                "7709c02559e3aa73aa03918ba2d492eea75abea235")
UNCOMPRESSED_WIF = "93KCDD4LdP4BDTNBXrvKUCVES2jo9dAKKvhyWpNEMstuxDauHty"

# Core descriptor_tests.cpp, "Basic single-key compressed"
P2PK = "2103a34b99f22c790c4e36b2b3c2c35a36db06226e41c692fc82b8b56ac1c540c5bdac"
P2PKH = "76a9149a1c78a507689f6f54b847ad1cef1e614ee23f1e88ac"
P2WPKH = "00149a1c78a507689f6f54b847ad1cef1e614ee23f1e"
P2SH_P2WPKH = "a91484ab21b1b2fd065d4504ff693d832434b6108d7b87"
P2TR = "512077aab6e066f8a7419c5ab714c12c67d25007ed55a43cadcacb4d7a970a093f11"


def scripts(desc: str) -> list[str]:
    return [e.script_pubkey.hex() for e in expand_descriptor(desc, P)]


@pytest.mark.parametrize("key", [KEY, WIF])
def test_single_key_descriptors_give_cores_scripts(key):
    assert scripts(f"combo({key})") == [P2PK, P2PKH, P2WPKH, P2SH_P2WPKH]
    assert scripts(f"pk({key})") == [P2PK]
    assert scripts(f"pkh({key})") == [P2PKH]
    assert scripts(f"wpkh({key})") == [P2WPKH]
    assert scripts(f"sh(wpkh({key}))") == [P2SH_P2WPKH]
    assert scripts(f"tr({key})") == [P2TR]
    assert scripts(f"rawtr({key})") == ["5120" + XONLY]


def test_x_only_keys_in_taproot_and_the_specialized_descs():
    assert scripts(f"tr({XONLY})") == [P2TR]
    [e] = expand_descriptor(f"tr({KEY})", P)
    assert e.desc == add_checksum(f"tr({XONLY})")                  # Core prints the x-only key
    [e] = expand_descriptor(f"pkh({WIF})", P)
    assert e.desc == add_checksum(f"pkh({KEY})")                   # and public keys, never the WIF
    descs = [e.desc.split("#")[0] for e in expand_descriptor(f"combo({KEY})", P)]
    assert descs == [f"pk({KEY})", f"pkh({KEY})", f"wpkh({KEY})", f"sh(wpkh({KEY}))"]


def test_uncompressed_keys_where_core_allows_them():
    u_pkh = expand_descriptor(f"pkh({UNCOMPRESSED})", P)[0].script_pubkey.hex()
    assert scripts(f"combo({UNCOMPRESSED_WIF})") == ["41" + UNCOMPRESSED + "ac", u_pkh]   # no segwit
    with pytest.raises(DescriptorError, match=r"^wpkh\(\): Uncompressed keys are not allowed$"):
        expand_descriptor(f"wpkh({UNCOMPRESSED})", P)


def test_raw_and_addr_keep_the_inferred_desc():
    [e] = expand_descriptor(add_checksum("raw(51)"), P)
    assert e.script_pubkey == b"\x51" and e.desc == "raw(51)#8lvh9jxk"
    addr = "bcrt1qngw83fg8dz0k749cg7k3emc7v98wy0c7azaa6h"
    [e] = expand_descriptor(f"addr({addr})", P)
    assert e.script_pubkey.hex() == P2WPKH and e.desc == add_checksum(f"addr({addr})")


def test_checksums_as_cores_checkchecksum():
    desc = f"pkh({KEY})"
    assert check_checksum(desc) == desc
    assert check_checksum(add_checksum(desc)) == desc
    good = descriptor_checksum(desc)
    bad = ("q" if good[0] != "q" else "p") + good[1:]
    with pytest.raises(DescriptorError, match=f"^Provided checksum '{bad}' does not match computed checksum '{good}'$"):
        expand_descriptor(f"{desc}#{bad}", P)
    with pytest.raises(DescriptorError, match="^Expected 8 character checksum, not 3 characters$"):
        expand_descriptor(f"{desc}#abc", P)
    with pytest.raises(DescriptorError, match="^Multiple '#' symbols$"):
        expand_descriptor(f"{desc}#{good}#x", P)
    with pytest.raises(DescriptorError, match="^Missing checksum$"):
        check_checksum(desc, require=True)


@pytest.mark.parametrize("desc, message", [
    ("raw(5g)", "Raw script is not hex"),
    ("addr(1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH)", "Address is not valid"),     # mainnet, not regtest
    (f"wpkh({KEY[:-2]})", f"wpkh(): Pubkey '{KEY[:-2]}' is invalid"),
    ("pkh(nonsense)", "pkh(): key 'nonsense' is not valid"),
])
def test_parse_errors(desc, message):
    with pytest.raises(DescriptorError) as e:
        expand_descriptor(desc, P)
    assert str(e.value) == message


def test_unsupported_functions_say_so():
    with pytest.raises(DescriptorError, match="not supported by tinynode"):
        expand_descriptor(f"wsh(pk({KEY}))", P)
    with pytest.raises(DescriptorError, match="not a valid"):
        expand_descriptor("foo(00)", P)
