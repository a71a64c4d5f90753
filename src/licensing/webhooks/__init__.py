"""Webhooks: events of the outbox delivered to operator-registered URLs (SPEC 9)."""
