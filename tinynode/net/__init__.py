"""L6 networking: peers, headers-first sync and relay, connection manager, address book."""
