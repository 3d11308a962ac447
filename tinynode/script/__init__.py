"""Bitcoin Script for a legacy (pre-segwit) node: opcodes, flags, templates, sighash, interpreter."""
