"""Data loading, losses, callbacks, metrics and weights handling."""
