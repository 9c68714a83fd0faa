"""relaygate: a self-hosted SMTP relay gateway with an HTTP send API."""

__version__ = "0.1.0"
