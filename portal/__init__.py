"""Jourpost portal: the Litestar application, its schema and its pages."""
