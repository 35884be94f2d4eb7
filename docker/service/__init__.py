"""Prediction service that goes into every strategy image (as ``backend/``)."""
