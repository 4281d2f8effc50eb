"""Personnummer lookup for the jour: advisories and reports about one person."""
