"""Long-running processes: the Celery app (worker and beat) and the MQTT bridge."""
