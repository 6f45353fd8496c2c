"""The Spark adapter: a batch engine (and the streaming speed layer) over the parquet lake."""
