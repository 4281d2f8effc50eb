"""Imports every model module so Base.metadata knows every table (Alembic, schema checks).

Each feature keeps its models in portal/<feature>/models.py; add the module here.
"""

from portal import jobs as jobs_models  # noqa: F401  (the periodic_jobs table)
from portal.advisories import models as advisories_models  # noqa: F401
from portal.assignments import models as assignments_models  # noqa: F401
from portal.attachments import models as attachments_models  # noqa: F401
from portal.codelists import models as codelists_models  # noqa: F401
from portal.db import models  # noqa: F401
from portal.decisions import models as decisions_models  # noqa: F401
from portal.drafts import models as drafts_models  # noqa: F401
from portal.lookup import models as lookup_models  # noqa: F401
from portal.notify import models as notify_models  # noqa: F401
from portal.placements import models as placements_models  # noqa: F401
from portal.police import models as police_models  # noqa: F401
from portal.reports import models as reports_models  # noqa: F401
from portal.retention import models as retention_models  # noqa: F401
from portal.rosters import models as rosters_models  # noqa: F401
from portal.stats import models as stats_models  # noqa: F401
