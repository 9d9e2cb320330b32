"""Tenant and staff requests, incidents, service-level clocks, timelines, Open311."""
