"""`python -m tinynode` runs the daemon."""
from .cli import daemon_main

raise SystemExit(daemon_main())
