"""Storage (L3): the ChainStore protocol and its SQLite / in-memory implementations."""
