"""The pure FinOps domain: contracts, normalisation, quality rules, aggregation and ports.

Imports only the standard library and attrs, so any tool can embed it.
"""
