"""Archive (e-arkiv): the archivist's search and record view, and the E-ARK export."""
