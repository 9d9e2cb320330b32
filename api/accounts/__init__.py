"""People: tenants and staff, roles, phone login, delegations."""
