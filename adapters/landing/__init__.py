"""Landing sources: the dataset zip, the synthetic generator and the landing profiler."""
