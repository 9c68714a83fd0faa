"""relaygate.relay."""
