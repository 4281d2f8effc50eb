"""Form drafts: a half-filled form kept across a session timeout, encrypted, expiring."""
