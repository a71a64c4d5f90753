"""billed services and the outbox cursor of document mail

* ``contract_services.billed``, set by the billing run with a service's first line: the
  licences part decides what a billed service may no longer change (a weekly service's start,
  the licence's anchor day) from it instead of reading invoice lines.
* ``outbox_cursors``: how far a reader of the events outbox has got. The mail of approved
  documents is now queued from the outbox (``documents.queue``) instead of by the approving
  transaction; every document approved before this revision has its delivery already, so its
  cursor starts at the newest event.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 23:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Not a batch operation: SQLite would copy the table (and invoice lines refer to it); both
    # databases add a column with a default in place.
    op.add_column("contract_services", sa.Column("billed", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Every service that has a line on an invoice (of any status) has been billed.
    op.execute(
        "update contract_services set billed = true"
        " where exists (select 1 from invoice_lines where invoice_lines.contract_service_id = contract_services.id)"
    )
    op.create_table(
        "outbox_cursors",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("after_event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute("insert into outbox_cursors (name, after_event_id) select 'documents', coalesce(max(id), 0) from events")


def downgrade() -> None:
    op.drop_table("outbox_cursors")
    # In place too (SQLite since 3.35): nothing refers to the column.
    op.execute("alter table contract_services drop column billed")
