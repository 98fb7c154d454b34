"""Candidate endpoints for a request, load balancing, fallbacks and live endpoint health."""
