"""The terminal through Rich: a live progress line per stage, and tables."""
