"""Notifications: a transactional e-mail outbox and its dispatcher."""
