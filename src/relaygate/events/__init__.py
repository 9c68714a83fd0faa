"""relaygate.events."""
