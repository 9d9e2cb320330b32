"""Shared ground: base model, error shape, pagination, roles, health checks."""
