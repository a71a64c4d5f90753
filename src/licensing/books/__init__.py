"""The books (SPEC 11): a double-entry journal posted with every financial event, the chart of
accounts that names its ledger accounts, the lock date, the trial balance and the exports that
accounting tools import. It imports only ``db`` and the accounts' model (for names) of the
engine's parts: the parts that make the events (credits, invoicing) hand it plain entries."""
