"""hybrid-agent: a self-hosted voice-and-text assistant appliance."""

__version__ = "0.1.0"
