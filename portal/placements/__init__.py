"""The placement register (FR-B8): who a municipality has placed where, under which legal basis.

Kept by the municipality's handlers (a new version on every change, history kept), read by the
jour by personnummer through the lookup and by the police-assistance check (portal.police).
"""
