"""relaygate.bounces."""
