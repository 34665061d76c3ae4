"""Analyses: pure functions over frames returning result objects with their checks.

Analyses never read XML, touch the network, or import from ``ent_audit.reports`` or the CLI.
"""
