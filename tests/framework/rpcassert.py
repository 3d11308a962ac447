"""Small assertions the RPC tests share: the code (and message) of an RPC error, and an amount
in coins (as JSON-RPC returns it) in satoshis."""
from __future__ import annotations

from decimal import Decimal
from typing import Any, Awaitable

import pytest

from tinynode.rpc.protocol import RPCError

COIN = 100_000_000


def sats(amount: Any) -> int:
    """An RPC amount in coins (float or Decimal, 8 decimals) → satoshis, exactly."""
    return int(Decimal(str(amount)) * COIN)


async def rpc_error(coro: Awaitable[Any]) -> tuple[int, str]:
    """(code, message) of the RPCError the call must raise."""
    with pytest.raises(RPCError) as e:
        await coro
    return e.value.code, e.value.message


async def rpc_code(coro: Awaitable[Any]) -> int:
    """The code of the RPCError the call must raise."""
    return (await rpc_error(coro))[0]
