"""Web plumbing shared by every feature: principal, headers, errors, templates, static files."""
