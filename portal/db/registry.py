"""Imports every model module so Base.metadata knows every table (Alembic, schema checks).

Each feature keeps its models in portal/<feature>/models.py; add the module here.
"""

from portal.db import models  # noqa: F401
from portal.rosters import models as rosters_models  # noqa: F401
from portal.decisions import models as decisions_models  # noqa: F401
