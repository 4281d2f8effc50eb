"""Tests of the storage package (run on both backends where behaviour is shared)."""
