"""Mining: block templates, the `grind` worker and the `Miner` task.

Kept import-free on purpose: worker processes unpickle `tinynode.mining.worker.grind` and must
not pull in the chain, storage or asyncio layers.
"""
