"""Scoring and measuring: folders of mattes, benchmark datasets, latency profiles."""
