"""Assignments (uppdrag) from a municipality to its jour, and the jour's shift handover notes."""
