"""Engine tests: worker crashes, restarts and the transactional outbox, end to end."""
