"""relaygate.compose."""
