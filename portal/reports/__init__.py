"""Incident reports (händelserapporter): jour -> a municipality unit, acknowledged, with addenda."""
