"""Pure-Python adapters: the reference engine and in-memory fakes that keep state for tests."""
