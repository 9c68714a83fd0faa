"""relaygate.dkim."""
