"""Database: SQLAlchemy 2.0 models, the async engine and sessionmaker, Alembic migrations."""
