"""Guardrails: OpenRouter's policies assigned to API keys — which models and providers a key may use, how much
its keys may spend together, data retention, and content filters on prompts."""
