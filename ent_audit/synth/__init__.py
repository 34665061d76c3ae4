"""Synthetic perimeter generator: AAF XML and archives with injectable defects and truth."""

from ent_audit.synth.generator import DEFECTS, Perimeter, SynthResult, write

__all__ = ["DEFECTS", "Perimeter", "SynthResult", "write"]
