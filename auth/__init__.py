"""Authentication and authorisation: the OIDC relying party, the development identity provider,
server-side sessions, roles and permissions. A library: it never imports the portal."""
