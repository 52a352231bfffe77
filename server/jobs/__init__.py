"""Background ingestion: jobs recorded in the registry, run by workers that take them from a huey queue."""
