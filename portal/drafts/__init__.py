"""drafts feature: form drafts kept across a session timeout, encrypted, expiring."""
