"""The mempool: relay policy (`policy`), the pool (`pool`) and orphan txs (`orphans`)."""

from .orphans import OrphanPool
from .policy import FeeRate, PolicyConfig
from .pool import Mempool, MempoolEntry, MempoolInfo, MissingInputsError, ProcessResult

__all__ = ["Mempool", "MempoolEntry", "MempoolInfo", "MissingInputsError", "ProcessResult",
           "OrphanPool", "FeeRate", "PolicyConfig"]
