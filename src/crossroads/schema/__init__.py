"""The public OpenRouter/OpenAI wire types: request checks and the normalised usage type."""
