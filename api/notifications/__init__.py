"""Reaching people: the notification outbox, its channels, preferences, templates and alerts."""
