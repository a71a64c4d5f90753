"""The accountant's view (SPEC 7): outstanding liability and recognised revenue, per currency.

Every figure is computed from the ledger and the grants. Money follows the ledger's valuation
(``credits.ledger.worth``): the outstanding credits of a grant are worth value x outstanding /
credits, rounded to the cent per grant, and each ledger entry records the change of that worth
it made (``value``). So for every currency, over all time, to the cent,

    value sold = revenue recognised (consumed + expired or cut) + value taken back + liability

(grants from invoices are sold; manual additions are worth 0; a transfer moves value between
accounts without changing the total), and the journal's deferred credit revenue and revenue
accounts (``books``) equal these reports.

* **Liability at a moment t**: credits outstanding on every grant not expired at t (valid or not
  yet valid, held credits included: they are promised, not consumed), as the ledger stood at t,
  times the value of one credit.
* **Revenue per month** (months of the operator's zone): value of the credits consumed (net of
  reversals, deductions and debt settlements included) plus value of the credits that expired
  or were cut by a rollover cap; with the credits sold, consumed, expired and taken back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from sqlalchemy import func
from sqlmodel import Session, col, select

from licensing.clock import end_of_day, start_of_day
from licensing.config import Settings, get_settings
from licensing.credits.ledger import worth
from licensing.credits.models import Grant, LedgerEntry

OUTSTANDING_EXCLUDED = ("hold", "hold_release")  # held credits stay outstanding
CONSUMED = ("consume", "consume_reversal", "adjust_deduct", "debt_settlement")
EXPIRED = ("expire", "rollover_cut")
TAKEN_BACK = ("credit_note_reversal",)
SOLD_SOURCES = ("invoice_line",)


def _fraction(value) -> Fraction:
    return Fraction(value)


@dataclass(slots=True)
class Liability:
    credits: Fraction = Fraction(0)
    value: Fraction = Fraction(0)


@dataclass(slots=True)
class LiabilityReport:
    as_of: datetime
    # currency -> (total, {account_id: Liability})
    currencies: dict[str, tuple[Liability, dict[int, Liability]]] = field(default_factory=dict)


def grant_rows(session: Session, grant_ids) -> dict[int, object]:
    """The grants' rows with what their worth depends on."""
    rows = {}
    ids = sorted(set(grant_ids))
    for offset in range(0, len(ids), 5000):
        chunk = ids[offset : offset + 5000]
        rows.update(
            (row.id, row)
            for row in session.exec(
                select(Grant.id, Grant.account_id, Grant.currency, Grant.credits, Grant.value, Grant.expires_at).where(col(Grant.id).in_(chunk))
            ).all()
        )
    return rows


def liability(session: Session, as_of: datetime, *, inclusive: bool = True) -> LiabilityReport:
    """Outstanding credits and their value at ``as_of``, per currency and account. A date's
    report passes the instant that ends it with ``inclusive=False``: the state just before it
    (credits expiring at that instant are still outstanding; their breakage is next month's).

    Outstanding: on a grant not expired at ``as_of``, its remaining and held credits as the
    ledger stood then; on an expired grant, the credits still held by open holds (promised to
    an event, neither consumed nor released yet)."""
    effective = LedgerEntry.occurred_at <= as_of if inclusive else LedgerEntry.occurred_at < as_of
    sums = session.exec(
        select(LedgerEntry.grant_id, LedgerEntry.kind, func.sum(LedgerEntry.credits))
        .where(effective, col(LedgerEntry.grant_id).is_not(None))
        .group_by(LedgerEntry.grant_id, LedgerEntry.kind)
    ).all()
    kept: dict[int, Fraction] = {}
    held: dict[int, Fraction] = {}
    for grant_id, kind, credits in sums:
        if kind in OUTSTANDING_EXCLUDED:
            held[grant_id] = held.get(grant_id, Fraction(0)) - _fraction(credits)
        else:
            kept[grant_id] = kept.get(grant_id, Fraction(0)) + _fraction(credits)
    grants = grant_rows(session, set(kept) | set(held))
    report = LiabilityReport(as_of=as_of)
    for grant_id in sorted(set(kept) | set(held)):
        row = grants[grant_id]
        expired = row.expires_at is not None and (row.expires_at <= as_of if inclusive else row.expires_at < as_of)
        outstanding = held.get(grant_id, Fraction(0)) if expired else kept.get(grant_id, Fraction(0))
        if not outstanding:
            continue
        total, accounts = report.currencies.setdefault(row.currency, (Liability(), {}))
        value = _fraction(worth(row, Decimal(outstanding.numerator) / Decimal(outstanding.denominator)))
        for target in (total, accounts.setdefault(row.account_id, Liability())):
            target.credits += outstanding
            target.value += value
    report.currencies = dict(sorted(report.currencies.items()))
    return report


@dataclass(slots=True)
class Movement:
    credits: Fraction = Fraction(0)
    value: Fraction = Fraction(0)

    def add(self, credits: Fraction, value: Fraction) -> None:
        self.credits += credits
        self.value += value


@dataclass(slots=True)
class Month:
    month: str  # YYYY-MM
    sold: Movement = field(default_factory=Movement)
    consumed: Movement = field(default_factory=Movement)
    expired: Movement = field(default_factory=Movement)
    taken_back: Movement = field(default_factory=Movement)

    @property
    def recognised(self) -> Fraction:
        return self.consumed.value + self.expired.value


@dataclass(slots=True)
class RevenueReport:
    start: date
    end: date
    currencies: dict[str, dict[str, Month]] = field(default_factory=dict)  # currency -> month -> figures


def revenue(session: Session, start: date, end: date, settings: Settings | None = None) -> RevenueReport:
    """Recognised revenue per month between two dates (inclusive, operator's zone)."""
    settings = settings or get_settings()
    zone = settings.zone
    since, until = start_of_day(start, zone), end_of_day(end, zone)
    report = RevenueReport(start=start, end=end)
    kinds = CONSUMED + EXPIRED + TAKEN_BACK + ("grant",)
    rows = session.exec(
        select(LedgerEntry.kind, LedgerEntry.credits, LedgerEntry.value, LedgerEntry.occurred_at, LedgerEntry.source_type, LedgerEntry.grant_id)
        .where(
            col(LedgerEntry.kind).in_(kinds),
            LedgerEntry.occurred_at >= since,
            LedgerEntry.occurred_at < until,
            col(LedgerEntry.grant_id).is_not(None),
        )
        .order_by(LedgerEntry.id)
    ).all()
    grants = grant_rows(session, {row.grant_id for row in rows}) if rows else {}
    for kind, credits, value, occurred_at, source_type, grant_id in rows:
        currency = grants[grant_id].currency
        if kind == "grant" and source_type not in SOLD_SOURCES:
            continue
        month_key = occurred_at.astimezone(zone).strftime("%Y-%m")
        month = report.currencies.setdefault(currency, {}).setdefault(month_key, Month(month_key))
        sign = 1 if kind == "grant" else -1
        bucket = month.sold if kind == "grant" else month.consumed if kind in CONSUMED else month.expired if kind in EXPIRED else month.taken_back
        bucket.add(sign * _fraction(credits), sign * _fraction(value))
    for currency, months in report.currencies.items():
        report.currencies[currency] = dict(sorted(months.items()))
    return report


def totals(months: dict[str, Month]) -> Month:
    total = Month("total")
    for month in months.values():
        for name in ("sold", "consumed", "expired", "taken_back"):
            getattr(total, name).add(getattr(month, name).credits, getattr(month, name).value)
    return total


@dataclass(frozen=True, slots=True)
class Expiring:
    currency: str
    credits: Decimal  # the remaining credits of grants that expire within the window
    value: Decimal  # what they are worth (``credits.ledger.worth``, per grant)
    accounts: int


def expiring(session: Session, now: datetime, until: datetime) -> list[Expiring]:
    """The credits still remaining now on grants that expire after ``now`` and by ``until``,
    per currency: what members lose unless they book (the console's dashboard)."""
    rows = session.exec(
        select(Grant.id, Grant.account_id, Grant.currency, Grant.credits, Grant.value, Grant.remaining, Grant.expires_at).where(
            col(Grant.expires_at) > now, col(Grant.expires_at) <= until, col(Grant.remaining) > 0
        )
    ).all()
    totals: dict[str, tuple[Decimal, Decimal, set[int]]] = {}
    for row in rows:
        credits, value, accounts = totals.get(row.currency, (Decimal(0), Decimal(0), set()))
        accounts.add(row.account_id)
        totals[row.currency] = (credits + row.remaining, value + worth(row, row.remaining), accounts)
    return [Expiring(currency, credits, value, len(accounts)) for currency, (credits, value, accounts) in sorted(totals.items())]
