"""JSON-RPC: protocol shapes (stdlib), server (aiohttp, Unix socket), methods, clients.

Import submodules directly; this package imports nothing so the CLI stays fast.
"""
