"""Accounts: login at the identity provider, the session it starts, and logout."""
