"""Decision kinds and their deadlines, as data.

The deadlines run from the ORAL decision, not from the signature. Defaults below follow
DESIGN.md §2 and are to be confirmed by the municipalities' lawyers; they are data so a lawyer's
correction is a one-line change with no code touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class DeadlineRule:
    """One thing that must happen within a time of the oral decision."""

    key: str
    """Stable identifier."""
    label: str
    """Swedish description shown to users."""
    within: timedelta | None
    """Time allowed after the oral decision; None = the committee's next meeting."""
    basis: str
    """Legal provision the rule comes from."""
    immediately: bool = False
    """The act says "genast" (no clock time): documents say so, and `within` is only when
    Jourpost starts to show it as passed."""


@dataclass(frozen=True, slots=True)
class DecisionKind:
    """A kind of chair decision."""

    key: str
    """Stable identifier stored on the decision."""
    title: str
    """Swedish title on the document."""
    act: str
    """Short legal reference, e.g. "6 § LVU"."""
    deadlines: tuple[DeadlineRule, ...]
    """What must follow, counted from the oral decision."""
    statute: str = ""
    """The provision as a legal document cites it in full, e.g. "6 § lagen (1990:52) med
    särskilda bestämmelser om vård av unga (LVU)"."""
    operative: str = ""
    """What is decided, after "att"; `{subject}` is the person the decision concerns."""


NEXT_MEETING = DeadlineRule(
    "report_to_committee",
    "Anmäls vid nämndens nästa sammanträde",
    None,
    "delegationsordningen / KL 6 kap. 40 §",
)

KINDS: dict[str, DecisionKind] = {
    "lvu6": DecisionKind(
        "lvu6",
        "Beslut om omedelbart omhändertagande",
        "6 § LVU",
        (
            DeadlineRule(
                "submit_to_court",
                "Underställs förvaltningsrätten",
                timedelta(days=7),
                "7 § LVU",
            ),
            NEXT_MEETING,
        ),
        statute="6 § lagen (1990:52) med särskilda bestämmelser om vård av unga (LVU)",
        operative="{subject} omedelbart ska omhändertas",
    ),
    "lvm13": DecisionKind(
        "lvm13",
        "Beslut om omedelbart omhändertagande",
        "13 § LVM",
        (
            # "Genast" has no clock time in the act; a deadline at the very minute of the oral
            # decision read "passerad" the moment the draft was saved. Documents say "genast";
            # Jourpost shows it as passed after one day (to be confirmed by the lawyers).
            DeadlineRule(
                "submit_to_court",
                "Underställs förvaltningsrätten genast",
                timedelta(days=1),
                "15 § LVM",
                immediately=True,
            ),
            NEXT_MEETING,
        ),
        statute="13 § lagen (1988:870) om vård av missbrukare i vissa fall (LVM)",
        operative="{subject} omedelbart ska omhändertas",
    ),
    "lvu11": DecisionKind(
        "lvu11",
        "Beslut om flyttning (omplacering)",
        "11 § LVU",
        (NEXT_MEETING,),
        statute=(
            "11 § andra stycket lagen (1990:52) med särskilda bestämmelser om vård av unga (LVU)"
        ),
        operative="{subject} ska flyttas till det hem som anges under rubriken Placering",
    ),
}

DEFINITE_FUNCTION = {
    "ordförande": "Ordföranden",
    "ersättare": "Ersättaren",
    "förordnad ledamot": "Den förordnade ledamoten",
}
"""The decision maker's function as the subject of the operative sentence."""


def in_running_text(name: str) -> str:
    """A committee's name inside a sentence: Swedish writes "socialnämnden i Hudiksvall" —
    the committee in lower case, the municipality as it is registered."""
    return name[:1].lower() + name[1:]


def decision_sentence(kind: str, function: str, committee: str, subject: str) -> str:
    """The operative sentence of the document, e.g. "Ordföranden i socialnämnden i Hudiksvall
    beslutar med stöd av 6 § lagen (1990:52) ... att X omedelbart ska omhändertas."."""
    k = KINDS[kind]
    who = DEFINITE_FUNCTION.get(function, function[:1].upper() + function[1:])
    return (
        f"{who} i {in_running_text(committee)} beslutar med stöd av {k.statute} "
        f"att {k.operative.format(subject=subject)}."
    )


@dataclass(frozen=True, slots=True)
class Deadline:
    """A computed deadline of one decision."""

    rule: DeadlineRule
    """The rule it comes from."""
    due: datetime | None
    """When it is due; None for "the committee's next meeting"."""

    def overdue(self, now: datetime) -> bool:
        """True when the due time has passed."""
        return self.due is not None and now > self.due


ENDED = frozenset({"lifted", "cancelled"})
"""States in which no deadline runs any more: a lifted custody is not submitted to the court,
and a cancelled draft was never a decision."""


def reported_at_next_meeting(status: str) -> bool:
    """Decisions the committee must be told about (KL 6 kap. 40 §): every decision taken under
    delegation, a lifted one too — only drafts and cancelled (never-made) ones are not."""
    return status not in ("draft", "cancelled")


def deadlines(kind: str, oral_decision_at: datetime) -> list[Deadline]:
    """The deadlines of a decision of `kind` taken orally at `oral_decision_at`."""
    return [
        Deadline(rule, None if rule.within is None else oral_decision_at + rule.within)
        for rule in KINDS[kind].deadlines
    ]
