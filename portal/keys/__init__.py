"""Key management jobs: re-wrapping data keys and re-encrypting fields under a new KEK."""
