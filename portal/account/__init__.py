"""account feature."""
