"""Models, providers, endpoints and prices: data files and their loader."""
