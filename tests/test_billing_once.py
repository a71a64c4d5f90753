"""No day of a contract service is billed twice (SPEC 2), whatever operators do to a licence
between billing runs: change its anchor day or end date, terminate it, let it renew, add
services and move their dates. A state machine drives the use cases on both databases and, after
every step, checks the lines of every service: their date ranges never overlap."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlmodel import col, select

from licensing.accounts.services import create_account
from licensing.catalog.services import create_product
from licensing.errors import LicenceAlreadyBilled, ServiceAlreadyBilled, ValidationFailed
from licensing.invoicing.billing import run_billing
from licensing.invoicing.models import Invoice, InvoiceLine
from licensing.licences.models import ContractService
from licensing.licences.renewal import renew_due_licences
from licensing.licences.services import add_service, create_licence, terminate_licence, update_licence, update_service

START = date(2027, 1, 1)
SETUP = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
# Offsets from the licence's start, in days: mostly early, so that services bill before they change.
days = st.one_of(st.sampled_from([0, 0, 6, 13, 30, 31, 45, 59]), st.integers(min_value=0, max_value=200))


class BillingMachine(RuleBasedStateMachine):
    def __init__(self, database) -> None:
        super().__init__()
        self.database = database
        self.today = START
        with database.write() as session:
            account = create_account(session, name="Once Ltd", email="billing@once.test", currency="EUR", at=SETUP)
            self.products = {
                kind: create_product(session, at=SETUP, **values).id
                for kind, values in {
                    "pack": {
                        "kind": "credit_pack",
                        "name": "10 credits",
                        "price": Decimal("100"),
                        "currency": "EUR",
                        "credits": Decimal(10),
                        "lifetime": "P1M",
                    },
                    "desk": {"kind": "service", "name": "Desk", "price": Decimal("310"), "currency": "EUR"},
                }.items()
            }
            licence = create_licence(
                session, account_id=account.id, start_date=START, end_date=START + timedelta(days=89), auto_renew=True,
                renewal_term="P2M", at=SETUP,
            )
            self.licence_id = licence.id
            # A monthly desk and a weekly pack from the start: there is something to bill at once.
            self.services = [
                add_service(
                    session, licence.id, product_id=self.products[product], schedule=schedule, quantity=Decimal(1), from_date=START, at=SETUP
                ).id
                for product, schedule in (("desk", "monthly"), ("pack", "weekly"))
            ]

    def moment(self) -> datetime:
        return datetime.combine(self.today, time(2), tzinfo=UTC)

    @rule(schedule=st.sampled_from(["monthly", "weekly", "one_off"]), product=st.sampled_from(["pack", "desk"]), start=days,
          length=st.one_of(st.none(), days))
    def add_a_service(self, schedule, product, start, length):
        from_date = START + timedelta(days=start)
        to_date = None if length is None else from_date + timedelta(days=length)
        with self.database.write() as session:
            service = add_service(
                session, self.licence_id, product_id=self.products[product], schedule=schedule, quantity=Decimal(1),
                from_date=from_date, to_date=to_date, at=self.moment(),
            )
            self.services.append(service.id)

    @rule(anchor=st.integers(min_value=1, max_value=31))
    def change_the_anchor_day(self, anchor):
        try:
            with self.database.write() as session:
                update_licence(session, self.licence_id, billing_anchor_day=anchor)
        except LicenceAlreadyBilled:
            pass

    @rule(end=st.one_of(st.none(), days), auto_renew=st.booleans())
    def change_the_end_date(self, end, auto_renew):
        try:
            with self.database.write() as session:
                update_licence(session, self.licence_id, end_date=None if end is None else START + timedelta(days=end), auto_renew=auto_renew)
        except ValidationFailed:
            pass

    @rule(last_day=days)
    def terminate(self, last_day):
        try:
            with self.database.write() as session:
                terminate_licence(session, self.licence_id, effective_date=START + timedelta(days=last_day), at=self.moment(), actor="machine")
        except ValidationFailed:
            pass

    @precondition(lambda self: self.services)
    @rule(pick=st.integers(min_value=0, max_value=100), start=st.one_of(st.none(), days), length=st.one_of(st.none(), days))
    def move_a_service(self, pick, start, length):
        service_id = self.services[pick % len(self.services)]
        changes = {}
        if start is not None:
            changes["from_date"] = START + timedelta(days=start)
        changes["to_date"] = None if length is None else (changes.get("from_date") or START) + timedelta(days=length)
        try:
            with self.database.write() as session:
                update_service(session, self.licence_id, service_id, **changes)
        except (ServiceAlreadyBilled, ValidationFailed):
            pass

    @rule(later=st.sampled_from([0, 9, 17, 31, 45, 60]), approve=st.booleans())
    def run_billing(self, later, approve):
        self.today += timedelta(days=later)
        result = run_billing(self.database, as_of=self.today, now=self.moment(), actor="machine", approve_all=approve)
        assert result.failed == []

    @rule()
    def renew(self):
        renew_due_licences(self.database, today=self.today, now=self.moment())

    @invariant()
    def no_day_of_a_service_is_billed_twice(self):
        with self.database.read() as session:
            lines = session.exec(
                select(InvoiceLine.contract_service_id, InvoiceLine.period_start, InvoiceLine.period_end)
                .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
                .join(ContractService, ContractService.id == InvoiceLine.contract_service_id)
                .where(ContractService.licence_id == self.licence_id, col(Invoice.status).in_(["draft", "approved"]))
                .order_by(InvoiceLine.contract_service_id, InvoiceLine.period_start)
            ).all()
        previous: dict[int, date] = {}
        for service_id, start, end in lines:
            assert start <= end
            assert service_id not in previous or start > previous[service_id], f"service {service_id} billed {start} twice"
            previous[service_id] = end


def test_no_day_of_a_contract_service_is_billed_twice(database):
    run_state_machine_as_test(
        lambda: BillingMachine(database),
        settings=settings(
            max_examples=40, stateful_step_count=12, deadline=None, database=None, suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.reuse, Phase.generate],
        ),
    )
