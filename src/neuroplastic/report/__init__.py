"""Figures and machine-readable summaries for people and scripts."""
