"""Helpers the scenarios share (environment, resources, readings, reports); setup and profile_summary also run alone."""
