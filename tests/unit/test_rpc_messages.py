"""issue 19: RPC error sentences a newcomer meets say what was expected."""
from types import SimpleNamespace

import pytest

from tinynode.params import REGTEST, TINYNET
from tinynode.rpc.protocol import RPCError
from tinynode.rpc.util import RPCArea, address_prefix_hint


def test_invalid_address_says_which_prefixes_this_network_uses():
    assert address_prefix_hint(TINYNET) == "tinynet addresses start with T (P2SH ones with t)"
    assert address_prefix_hint(REGTEST) == "regtest addresses start with m or n (P2SH ones with 2)"
    area = RPCArea(SimpleNamespace(params=TINYNET))
    with pytest.raises(RPCError) as e:
        area._decode_address("1BoatSLRHtKNngkdXEeobR76b53LETtpyT")
    assert (e.value.code, e.value.message) == (
        -5, "Invalid address: 1BoatSLRHtKNngkdXEeobR76b53LETtpyT; tinynet addresses start with T (P2SH ones with t)")
    area = RPCArea(SimpleNamespace(params=REGTEST))
    with pytest.raises(RPCError) as e:
        area._decode_address("1BoatSLRHtKNngkdXEeobR76b53LETtpyT")
    assert e.value.message.endswith("; regtest addresses start with m or n (P2SH ones with 2)")
