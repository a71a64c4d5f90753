"""Helpers shared by several test modules (issue 13): test modules import from here, never
from one another.

* ``use_cases``: the worked examples' helpers, one call per use case in its own transaction.
* ``over_http``: the same through the HTTP API, each call at a frozen moment.
* ``mail``: a real SMTP server on 127.0.0.1 and the standard mailed invoice.
* ``einvoice``: the EN 16931 Schematron, offline, and the e-invoice XML read back.

``tests/factories.py`` builds the rows these helpers start from; ``tests/pdf_pages.py`` reads PDFs.
"""
