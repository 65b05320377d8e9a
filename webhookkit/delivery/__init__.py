"""Delivery records, retry policies and the scheduler that sends due deliveries."""
