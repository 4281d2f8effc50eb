"""Home: the start page per role, and the jour's night dashboard."""
