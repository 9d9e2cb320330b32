"""Palier: the resident-relations backend for social landlords."""
