"""The estate register: organisations, residences, buildings, dwellings, leases."""
