"""`python -m tinynode` runs the daemon (the same as the `tinynode` console script).

The guard matters: mining worker processes (spawn/forkserver) import the main module as
`__mp_main__`, and must not start a second daemon.
"""
from .cli import daemon_main

if __name__ == "__main__":
    raise SystemExit(daemon_main())
