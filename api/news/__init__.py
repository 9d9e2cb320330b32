"""Residence news and works: posts to a residence, building or entrance, and their readers."""
