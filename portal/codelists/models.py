"""Code list versions, their codes, and the mapping between versions (all in clear: no PII)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.db.base import Base


class CodeListVersion(Base):
    """A published version of the four code lists, valid for a period."""

    __tablename__ = "code_list_versions"

    version: Mapped[str] = mapped_column(String(20), primary_key=True)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(500))


class CodeEntry(Base):
    """One code of one list (category, action, character, initiator) in one version."""

    __tablename__ = "code_entries"

    list_name: Mapped[str] = mapped_column(String(20), primary_key=True)
    version: Mapped[str] = mapped_column(ForeignKey("code_list_versions.version"), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    definition: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    position: Mapped[int] = mapped_column()
    involves_child: Mapped[bool] = mapped_column(default=False)


class CodeMapping(Base):
    """A code in one version corresponds to a code in a later version (1:n for splits)."""

    __tablename__ = "code_mappings"

    list_name: Mapped[str] = mapped_column(String(20), primary_key=True)
    from_version: Mapped[str] = mapped_column(
        ForeignKey("code_list_versions.version"), primary_key=True
    )
    from_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    to_version: Mapped[str] = mapped_column(
        ForeignKey("code_list_versions.version"), primary_key=True
    )
    to_code: Mapped[str] = mapped_column(String(40), primary_key=True)
