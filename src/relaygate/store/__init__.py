"""relaygate.store."""
