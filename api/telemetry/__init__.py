"""Connected units: device registry, MQTT ingest, readings and their aggregates."""
