"""attnlab: which sequence architecture handles long-range dependencies, at what cost."""

__version__ = "0.1.0"
