"""Crossroads: a self-hosted LLM gateway, wire-compatible with OpenRouter."""

__version__ = "0.1.0"
