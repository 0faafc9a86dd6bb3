"""Covey's language server, CLI and usage log (import name ``covey_server``)."""

__version__ = "0.1.0"
