"""Roles, scoped to one organisation, and what each may do.

Addressing is by function: a role is held in an organisation (and for handlers optionally one
unit); whoever holds it sees what is addressed there. The permission sets are deliberately
small and explicit: a reader can check them against the design's persona table in one glance.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A role a user holds in one organisation."""

    JOUR_STAFF = "jour_staff"
    JOUR_HEAD = "jour_head"
    HANDLER = "handler"
    CHAIR = "chair"
    SUBSTITUTE = "substitute"
    ARCHIVIST = "archivist"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        """The Swedish name shown in the interface."""
        return ROLE_LABELS[self]


ROLE_LABELS: dict[Role, str] = {
    Role.JOUR_STAFF: "Socialsekreterare, socialjouren",
    Role.JOUR_HEAD: "Enhetschef, socialjouren",
    Role.HANDLER: "Handläggare, IFO",
    Role.CHAIR: "Ordförande",
    Role.SUBSTITUTE: "Ersättare / förordnad ledamot",
    Role.ARCHIVIST: "Arkivarie / registrator",
    Role.ADMIN: "Administratör",
}

# Which kind of organisation a role may be granted in.
ROLE_ORG_KINDS: dict[Role, frozenset[str]] = {
    Role.JOUR_STAFF: frozenset({"jour"}),
    Role.JOUR_HEAD: frozenset({"jour"}),
    Role.HANDLER: frozenset({"municipality"}),
    Role.CHAIR: frozenset({"municipality"}),
    Role.SUBSTITUTE: frozenset({"municipality"}),
    Role.ARCHIVIST: frozenset({"municipality", "jour"}),
    Role.ADMIN: frozenset({"service"}),
}


class Permission(StrEnum):
    """Something a role allows within its organisation."""

    MANAGE_USERS = "manage_users"
    READ_ADVISORIES = "read_advisories"
    POST_ADVISORIES = "post_advisories"
    WRITE_REPORTS = "write_reports"
    READ_REPORTS = "read_reports"
    DRAFT_DECISIONS = "draft_decisions"
    SIGN_DECISIONS = "sign_decisions"
    KEEP_ROSTER = "keep_roster"
    READ_ROSTERS = "read_rosters"
    READ_ARCHIVE = "read_archive"
    REVIEW_LOGS = "review_logs"
    READ_STATISTICS = "read_statistics"
    SEND_ASSIGNMENTS = "send_assignments"
    CARRY_OUT_ASSIGNMENTS = "carry_out_assignments"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.JOUR_STAFF: frozenset(
        {
            Permission.READ_ADVISORIES,
            Permission.WRITE_REPORTS,
            Permission.DRAFT_DECISIONS,
            Permission.READ_ROSTERS,
            Permission.CARRY_OUT_ASSIGNMENTS,
        }
    ),
    Role.JOUR_HEAD: frozenset(
        {
            Permission.READ_ADVISORIES,
            Permission.WRITE_REPORTS,
            Permission.DRAFT_DECISIONS,
            Permission.READ_ROSTERS,
            Permission.READ_STATISTICS,
            Permission.REVIEW_LOGS,
            Permission.CARRY_OUT_ASSIGNMENTS,
        }
    ),
    Role.HANDLER: frozenset(
        {
            Permission.POST_ADVISORIES,
            Permission.READ_REPORTS,
            Permission.KEEP_ROSTER,
            Permission.SEND_ASSIGNMENTS,
        }
    ),
    Role.CHAIR: frozenset({Permission.SIGN_DECISIONS, Permission.READ_STATISTICS}),
    Role.SUBSTITUTE: frozenset({Permission.SIGN_DECISIONS}),
    Role.ARCHIVIST: frozenset(
        {Permission.READ_ARCHIVE, Permission.REVIEW_LOGS, Permission.READ_STATISTICS}
    ),
    Role.ADMIN: frozenset({Permission.MANAGE_USERS}),
}


def role_allowed_in(role: Role, org_kind: str) -> bool:
    """True when `role` may be granted in an organisation of kind `org_kind`."""
    return org_kind in ROLE_ORG_KINDS[role]
