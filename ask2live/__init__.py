"""ASK2LIVE: structured live Q&A."""

__version__ = "0.1.0"
