"""Runner version, in its own module so it imports even where ``runner`` resolves as a namespace."""

__version__ = "0.1.0"
