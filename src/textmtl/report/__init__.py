"""Figures and printed summaries of trained models (matplotlib, Agg backend)."""
