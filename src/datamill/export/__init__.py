"""Exports to the formats training libraries read."""
