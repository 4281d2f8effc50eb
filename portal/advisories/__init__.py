"""Advisories (aviseringar): a municipality's plan for a client, sent to its jour."""
