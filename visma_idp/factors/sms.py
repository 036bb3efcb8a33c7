"""Placeholder: filled in by the two-step verification work."""
