"""RPC methods: Bitcoin Core's names, argument order, field names and error codes.

`RPCMethods` is the method table of one node, composed of one mixin per area, each only argument
parsing and JSON over the node's owners:

    control.py     stop, uptime, help; the table, dispatch with named arguments, timeouts
    blockchain.py  getblockchaininfo, getblock*, getchaintips, gettxout*, invalidate/reconsider …
    rawtx.py       the mempool and raw transactions: getrawmempool, sendrawtransaction,
                   testmempoolaccept, decode*, createrawtransaction, sign* …
    mempool.py     gettxspendingprevout, submitpackage
    fees.py        estimatesmartfee, estimaterawfee
    mining.py      generatetoaddress, generateblock, submitblock, getmininginfo, getnetworkhashps
    net.py         getpeerinfo, addnode, setban …, getnetworkinfo, deny/allowpeer
    wallet.py      getnewaddress, balances, sendtoaddress, listunspent, gettransaction, and the
                   friendly verbs' methods
    util.py        argument parsing and the JSON builders the areas share

Each method is `async def m_<name>(self, *params)`; its docstring is its help text.
Methods tinynode adds for its friendly CLI verbs are marked "(tinynode)" in `help`.
"""

from __future__ import annotations

from .blockchain import BlockchainRPC
from .control import LONG_METHODS, ControlRPC
from .fees import FeesRPC
from .mempool import MempoolRPC
from .mining import MiningRPC
from .net import NetRPC
from .rawtx import RawTxRPC
from .util import amount_from_json, amount_to_json
from .wallet import WalletRPC

__all__ = ["RPCMethods", "amount_to_json", "amount_from_json", "LONG_METHODS"]


class RPCMethods(ControlRPC, BlockchainRPC, RawTxRPC, MempoolRPC, FeesRPC, MiningRPC, NetRPC, WalletRPC):
    """The method table of one node."""
