"""licensing: a billing engine for coworking and flexible-workspace operators."""

__version__ = "0.1.0"
