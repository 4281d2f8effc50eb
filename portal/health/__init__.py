"""Health: the liveness probe, and the readiness probe (database, schema, object store)."""
