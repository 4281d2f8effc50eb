"""Database: SQLAlchemy 2.0 models, the async engine and session provider, Alembic migrations."""
