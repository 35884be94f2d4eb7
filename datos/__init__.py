"""Synthetic FIFA data and the RandomForest model generator."""
