"""Pure, synchronous consensus rules (L2): errors, proof of work, tx and block checks."""
