"""File attachments of records (advisories, reports): checked by content, encrypted at rest."""
