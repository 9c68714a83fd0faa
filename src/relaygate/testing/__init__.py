"""relaygate.testing."""
