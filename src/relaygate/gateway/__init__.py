"""relaygate.gateway."""
