"""Tenants' documents: rent-ledger lines from the accounting system, rent receipts, balances."""
