"""Retention (gallring): which records are due under the rules, legal holds, and culling."""
