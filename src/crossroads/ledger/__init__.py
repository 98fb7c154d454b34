"""Usage → cost, keys and their spend, generation records, credits."""
