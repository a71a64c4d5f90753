"""The journal as files that accounting tools import: ``csv``, ``datev``, ``xero``, ``quickbooks``
and ``beancount``. Each writer is a pure function of the entries and the options; amounts stay
``Decimal`` and are written with the currency's places ("120.00"), never through a float.

* ``csv``: our own layout, one row per posting (UTF-8, CRLF).
* ``datev``: the DATEV-Format "Buchungsstapel" (EXTF, header version 700, category 21, format
  version 13) as DATEV's developer portal describes it (developer.datev.de, "DATEV-Format":
  Einstieg, Header, Buchungsstapel): a header record, the 125 column names of format version 13
  as DATEV's sample file spells them, then one line per booking; semicolons, text in double
  quotes (inner quotes doubled), amounts "1234,56", Belegdatum DDMM (the year comes from the
  header), Windows-1252 with "?" for what it cannot hold, CRLF. The header's WKZ is EUR, each
  line carries its own currency in "WKZ Umsatz" (no Kurs or Basis-Umsatz is written); amounts
  are written with two places, as DATEV's format requires. The range must lie within one
  fiscal year and one calendar year, since a Belegdatum carries no year (ValueError otherwise).

  DATEV computes VAT from a tax key (BU-Schlüssel), so a VAT payable posting is not written as
  a line of its own: it is spread over the revenue-side postings of its entry (roles in
  ``VAT_CARRIERS`` with the same tax rate, on the same side) in proportion to their amounts,
  rounded half-up to the currency's places, the last of them taking the remainder, so that the
  gross amounts sum exactly to what was posted; those lines carry ``chart.tax_key(rate)``. When
  the rate has no key, or no posting carries it, the VAT posting stays a line of its own.
  DATEV recomputes the VAT from each gross line, which may differ from the posted VAT by a
  rounding cent.

  An entry's debits and credits are paired greedily into lines: the largest remaining debit
  with the largest remaining credit, each line the smaller of the two. A line is written from
  the debit account ("Konto", "S", "Gegenkonto" the credit account), except when only its debit
  side carries a tax key (a credit note's allowance): DATEV applies the key to the Gegenkonto,
  so that line is written from the credit account ("H"). Belegfeld 1 is the document number, or
  ``source_type-source_id``, reduced to the characters DATEV allows (letters, digits and
  ``$&%*+-/``; others become "-") and to its last 36; Buchungstext is the description on one
  line, cut at 60 characters.
* ``xero``: Xero's manual journal import template (help.xero.com "ManualJournalsImport"):
  ``*Narration,*Date,Description,*AccountCode,*TaxRate,*Amount`` and the tracking columns. One
  journal per entry (Xero groups rows by narration and date; the narration names the entry),
  dates DD/MM/YYYY, amounts positive for debits and negative for credits. Every line is
  "Tax Exempt": the VAT was posted explicitly as its own line, and a tax rate on the revenue line
  would make Xero add it a second time. Xero's manual journals have no currency column: the
  amounts are taken in the organisation's base currency. Xero imports at most 300 lines a file.
* ``quickbooks``: QuickBooks Online's journal entry import (Intuit help "Import journal
  entries"): Journal No (the entry's id), Journal Date (MM/DD/YYYY), Currency, Memo, Account
  Name, Debits, Credits, Description, Name (the member account). QuickBooks matches accounts by
  name (Intuit asks to turn account numbers off for the import), so the account is the chart's
  name without its code.
* ``beancount``: a ledger ``bean-check`` accepts: the title and operating currencies, an
  ``open`` for every account on the date of the first entry, one transaction per entry with its
  id, event, source and document as metadata. See ``_beancount_account`` for the account names.

Text cells of the CSV formats start with a single quote when they would start with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return, so that a spreadsheet shows a description
typed by a user instead of evaluating it as a formula.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from licensing import clock
from licensing.books.chart import ROLE_TYPES, Chart, rate_key
from licensing.books.views import EntryView, PostingView
from licensing.money import minor_unit

FORMATS = ("csv", "datev", "xero", "quickbooks", "beancount")

# The roles whose postings carry the VAT of their rate in a DATEV line (see the module docstring).
VAT_CARRIERS = ("services_revenue", "deferred_credit_revenue", "credits_awaiting_payment", "credit_note_allowances")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    start: date  # the range exported (inclusive)
    end: date
    chart: Chart
    operator_name: str = "Licensing"
    datev_consultant: str = "1001"  # Beraternummer
    datev_client: str = "1"  # Mandantennummer
    fiscal_year_start: date | None = None  # DATEV WJ-Beginn; default Jan 1 of start's year
    account_length: int = 4  # DATEV Sachkontenlänge
    created_at: datetime | None = None  # the file's creation stamp (DATEV header); default now (UTC)


@dataclass(frozen=True, slots=True)
class Export:
    content: bytes
    media_type: str
    filename: str


def export(format: str, entries: list[EntryView], options: ExportOptions) -> Export:  # noqa: A002 (the caller's word)
    writer = _WRITERS.get(format)
    if writer is None:
        raise ValueError(f"unknown export format {format!r}: one of {', '.join(FORMATS)}")
    return writer(entries, options)


# -- shared helpers ---------------------------------------------------------------------------


def _places(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def _plain(amount: Decimal, currency: str) -> str:
    """``amount`` at the currency's places, as a plain decimal ("120.00", "-59.50")."""
    return f"{amount.quantize(_places(currency), rounding=ROUND_HALF_UP):f}"


def _cell(text: str) -> str:
    """A text cell a spreadsheet will not evaluate as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reference(entry: EntryView) -> str:
    return entry.document or f"{entry.source_type}:{entry.source_id}"


def _csv_bytes(header: list[str], rows: Iterator[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _span(options: ExportOptions) -> str:
    return f"{options.start.isoformat()}-{options.end.isoformat()}"


# -- csv --------------------------------------------------------------------------------------

CSV_COLUMNS = [
    "entry_id", "date", "document", "event", "source_type", "source_id", "description",
    "account", "account_name", "role", "debit", "credit", "currency", "tax_rate",
]


def _csv(entries: list[EntryView], options: ExportOptions) -> Export:
    rows = (
        [
            str(entry.id), entry.date.isoformat(), _cell(entry.document or ""), _cell(entry.event), _cell(entry.source_type),
            _cell(entry.source_id), _cell(entry.description), _cell(posting.account), _cell(posting.account_name), posting.role,
            _plain(posting.debit, posting.currency), _plain(posting.credit, posting.currency), posting.currency,
            "" if posting.tax_rate is None else rate_key(posting.tax_rate),
        ]
        for entry in entries
        for posting in entry.postings
    )
    return Export(_csv_bytes(CSV_COLUMNS, rows), "text/csv; charset=utf-8", f"journal-{_span(options)}.csv")


# -- xero -------------------------------------------------------------------------------------

XERO_COLUMNS = [
    "*Narration", "*Date", "Description", "*AccountCode", "*TaxRate", "*Amount",
    "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2",
]


def _xero(entries: list[EntryView], options: ExportOptions) -> Export:
    rows = (
        [
            _cell(f"Journal entry {entry.id} ({_one_line(_reference(entry))})"), f"{entry.date:%d/%m/%Y}",
            _cell(_one_line(entry.description)), _cell(posting.account), "Tax Exempt",
            _plain(posting.debit - posting.credit, posting.currency), "", "", "", "",
        ]
        for entry in entries
        for posting in entry.postings
    )
    return Export(_csv_bytes(XERO_COLUMNS, rows), "text/csv; charset=utf-8", f"xero-manual-journals-{_span(options)}.csv")


# -- quickbooks -------------------------------------------------------------------------------

QUICKBOOKS_COLUMNS = ["Journal No", "Journal Date", "Currency", "Memo", "Account Name", "Debits", "Credits", "Description", "Name"]


def _quickbooks(entries: list[EntryView], options: ExportOptions) -> Export:
    def amount(value: Decimal, currency: str) -> str:
        return _plain(value, currency) if value else ""

    rows = (
        [
            str(entry.id), f"{entry.date:%m/%d/%Y}", posting.currency,
            _cell(f"Journal entry {entry.id} ({_one_line(_reference(entry))})"), _cell(posting.account_name),
            amount(posting.debit, posting.currency), amount(posting.credit, posting.currency),
            _cell(_one_line(entry.description)), _cell(_one_line(entry.account_name or "")),
        ]
        for entry in entries
        for posting in entry.postings
    )
    return Export(
        _csv_bytes(QUICKBOOKS_COLUMNS, rows), "text/csv; charset=utf-8", f"quickbooks-journal-entries-{_span(options)}.csv"
    )


# -- datev ------------------------------------------------------------------------------------

# The column names of the Buchungsstapel, format version 13, as line 2 of DATEV's own sample
# file spells them. DATEV reads the columns by position; the names are for people.
DATEV_COLUMNS = [
    "Umsatz (ohne Soll/Haben-Kz)", "Soll/Haben-Kennzeichen", "WKZ Umsatz", "Kurs", "Basis-Umsatz", "WKZ Basis-Umsatz", "Konto",
    "Gegenkonto (ohne BU-Schlüssel)", "BU-Schlüssel", "Belegdatum", "Belegfeld 1", "Belegfeld 2", "Skonto", "Buchungstext",
    "Postensperre", "Diverse Adressnummer", "Geschäftspartnerbank", "Sachverhalt", "Zinssperre", "Beleglink",
    *(f"Beleginfo - {kind} {number}" for number in range(1, 9) for kind in ("Art", "Inhalt")),
    "KOST1 - Kostenstelle", "KOST2 - Kostenstelle", "Kost-Menge", "EU-Land u. UStID (Bestimmung)", "EU-Steuersatz (Bestimmung)",
    "Abw. Versteuerungsart", "Sachverhalt L+L", "Funktionsergänzung L+L", "BU 49 Hauptfunktionstyp", "BU 49 Hauptfunktionsnummer",
    "BU 49 Funktionsergänzung",
    *(name for number in range(1, 21) for name in (f"Zusatzinformation - Art {number}", f"Zusatzinformation- Inhalt {number}")),
    "Stück", "Gewicht", "Zahlweise", "Forderungsart", "Veranlagungsjahr", "Zugeordnete Fälligkeit", "Skontotyp", "Auftragsnummer",
    "Buchungstyp", "USt-Schlüssel (Anzahlungen)", "EU-Land (Anzahlungen)", "Sachverhalt L+L (Anzahlungen)",
    "EU-Steuersatz (Anzahlungen)", "Erlöskonto (Anzahlungen)", "Herkunft-Kz", "Buchungs GUID", "KOST-Datum",
    "SEPA-Mandatsreferenz", "Skontosperre", "Gesellschaftername", "Beteiligtennummer", "Identifikationsnummer", "Zeichnernummer",
    "Postensperre bis", "Bezeichnung SoBil-Sachverhalt", "Kennzeichen SoBil-Buchung", "Festschreibung", "Leistungsdatum",
    "Datum Zuord. Steuerperiode", "Fälligkeit", "Generalumkehr (GU)", "Steuersatz", "Land", "Abrechnungsreferenz",
    "BVV-Position", "EU-Land u. UStID (Ursprung)", "EU-Steuersatz (Ursprung)", "Abw. Skontokonto",
]
_DATEV_CHARTS = {"skr03": "03", "skr04": "04"}  # Sachkontenrahmen in the header
_BELEGFELD_REFUSED = re.compile(r"[^A-Za-z0-9$&%*+\-/]+")
_CENTS = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class _Leg:
    """One side of DATEV lines: an account, its amount (gross once VAT is spread) and tax key."""

    account: str
    amount: Decimal
    debit: bool
    currency: str
    tax_key: str = ""


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _german(amount: Decimal) -> str:
    return f"{amount.quantize(_CENTS, rounding=ROUND_HALF_UP):f}".replace(".", ",")


def _spread(total: Decimal, weights: list[Decimal], places: Decimal) -> list[Decimal]:
    """``total`` split in proportion to ``weights``, each share rounded half-up to ``places``,
    the last share taking the remainder: the shares always sum to ``total`` exactly."""
    whole = sum(weights)
    shares = [(total * weight / whole).quantize(places, rounding=ROUND_HALF_UP) for weight in weights[:-1]]
    return [*shares, total - sum(shares)]


def _carries(posting: PostingView, vat: PostingView) -> bool:
    """Whether ``posting`` carries the VAT posting ``vat`` in DATEV: a revenue-side role, the
    same rate, the same side and the same currency."""
    return (
        posting.role in VAT_CARRIERS and posting.tax_rate is not None and vat.tax_rate is not None
        and rate_key(posting.tax_rate) == rate_key(vat.tax_rate) and (posting.debit > 0) == (vat.debit > 0)
        and posting.currency == vat.currency
    )


def _legs(entry: EntryView, chart: Chart) -> list[_Leg]:
    """The entry's postings as DATEV legs: each VAT posting whose rate has a tax key is spread
    over the postings that carry it (``_carries``), which then carry the key too."""
    legs: list[_Leg | None] = [_Leg(p.account, p.debit or p.credit, p.debit > 0, p.currency) for p in entry.postings]
    for index, vat in enumerate(entry.postings):
        key = chart.tax_key(vat.tax_rate) if vat.role == "vat_payable" else ""
        carriers = [position for position, posting in enumerate(entry.postings) if key and _carries(posting, vat)]
        if not carriers:
            continue
        weights = [entry.postings[position].debit or entry.postings[position].credit for position in carriers]
        for position, share in zip(carriers, _spread(vat.debit or vat.credit, weights, _places(vat.currency)), strict=True):
            legs[position] = replace(legs[position], amount=legs[position].amount + share, tax_key=key)
        legs[index] = None
    return [leg for leg in legs if leg is not None]


def _pairs(legs: list[_Leg]) -> Iterator[tuple[_Leg, _Leg, Decimal]]:
    """(debit leg, credit leg, amount) per line, per currency: the largest remaining debit with
    the largest remaining credit, each line the smaller of the two (ties: posting order)."""
    for currency in dict.fromkeys(leg.currency for leg in legs):
        debits = [[leg, leg.amount] for leg in legs if leg.debit and leg.currency == currency]
        credits = [[leg, leg.amount] for leg in legs if not leg.debit and leg.currency == currency]
        while debits and credits:
            debit, credit = max(debits, key=lambda item: item[1]), max(credits, key=lambda item: item[1])
            amount = min(debit[1], credit[1])
            yield debit[0], credit[0], amount
            debit[1] -= amount
            credit[1] -= amount
            debits = [item for item in debits if item[1]]
            credits = [item for item in credits if item[1]]


def _booking(entry: EntryView, debit: _Leg, credit: _Leg, amount: Decimal) -> str:
    if debit.tax_key and not credit.tax_key:  # the key belongs to the Gegenkonto: book from the credit side
        account, contra, side, key = credit.account, debit.account, "H", debit.tax_key
    else:
        account, contra, side, key = debit.account, credit.account, "S", credit.tax_key or debit.tax_key
    fields = [""] * len(DATEV_COLUMNS)
    fields[0], fields[1], fields[2] = _german(amount), _quoted(side), _quoted(debit.currency)
    fields[6], fields[7], fields[8] = account, contra, _quoted(key)
    fields[9] = f"{entry.date:%d%m}"
    fields[10] = _quoted(_BELEGFELD_REFUSED.sub("-", entry.document or f"{entry.source_type}-{entry.source_id}")[-36:])
    fields[13] = _quoted(_one_line(entry.description)[:60])
    return ";".join(fields)


def _datev(entries: list[EntryView], options: ExportOptions) -> Export:
    fiscal_year_start = options.fiscal_year_start or date(options.start.year, 1, 1)
    fiscal_year_end = fiscal_year_start.replace(year=fiscal_year_start.year + 1) - timedelta(days=1)
    if not (fiscal_year_start <= options.start <= options.end <= fiscal_year_end and options.start.year == options.end.year):
        raise ValueError(
            f"a DATEV batch lies within one fiscal year (from {fiscal_year_start}) and one calendar year: "
            f"{options.start} to {options.end} does not"
        )
    created = options.created_at or clock.now()
    header = [
        _quoted("EXTF"), "700", "21", _quoted("Buchungsstapel"), "13", f"{created:%Y%m%d%H%M%S}{created.microsecond // 1000:03d}",
        "", _quoted("RE"), _quoted(_one_line(options.operator_name)[:25]), _quoted(""),
        options.datev_consultant, options.datev_client, f"{fiscal_year_start:%Y%m%d}", str(options.account_length),
        f"{options.start:%Y%m%d}", f"{options.end:%Y%m%d}", _quoted(f"Journal {options.start:%d.%m.%Y}-{options.end:%d.%m.%Y}"),
        _quoted(""), "1", "0", "0", _quoted("EUR"), "", _quoted(""), "", "", _quoted(_DATEV_CHARTS.get(options.chart.preset, "")),
        "", "", _quoted(""), _quoted(""),
    ]
    lines = [";".join(header), ";".join(DATEV_COLUMNS)]
    for entry in entries:
        lines.extend(_booking(entry, *pair) for pair in _pairs(_legs(entry, options.chart)))
    content = "".join(line + "\r\n" for line in lines).encode("cp1252", errors="replace")
    filename = f"EXTF_Buchungsstapel_{options.start:%Y%m%d}_{options.end:%Y%m%d}.csv"
    return Export(content, "text/csv; charset=windows-1252", filename)


# -- beancount --------------------------------------------------------------------------------

_GERMAN_LETTERS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


def _beancount_account(posting: PostingView) -> str:
    """The beancount account of a posting: the root of its role (``ROLE_TYPES``), then one
    component of its code and name, e.g. ``Liabilities:0990-Passive-Rechnungsabgrenzung-Guthaben``.

    A component may hold only ASCII letters, digits and dashes and starts with a capital or a
    digit. The code is written so that no two codes meet: its ASCII letters and digits stay, any
    other character (and ``X``, and a small letter in front) becomes ``X`` and six hex digits of
    its code point, so ``14.00`` is ``14X00002E00``; the code holds no dash, so it ends at the
    first one. The name follows, transliterated (``ö`` -> ``oe``), accents dropped, every run of
    other characters a dash. The first posting of a code names its account for the whole file."""
    code = "".join(
        character if character.isascii() and character.isalnum() and character != "X" and (position or not character.islower())
        else f"X{ord(character):06X}"
        for position, character in enumerate(posting.account)
    )
    name = unicodedata.normalize("NFKD", posting.account_name.translate(_GERMAN_LETTERS)).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    return f"{ROLE_TYPES[posting.role]}:{code}-{name}" if name else f"{ROLE_TYPES[posting.role]}:{code}"


def _string(text: str) -> str:
    """A beancount string literal (C-style escapes)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _beancount(entries: list[EntryView], options: ExportOptions) -> Export:
    accounts: dict[str, str] = {}  # code -> account: the first posting of a code names it for the whole file
    for entry in entries:
        for posting in entry.postings:
            accounts.setdefault(posting.account, _beancount_account(posting))
    lines = [f"option \"title\" {_string(f'{options.operator_name} journal {options.start} to {options.end}')}"]
    lines += [f'option "operating_currency" "{currency}"' for currency in sorted({p.currency for e in entries for p in e.postings})]
    if entries:
        opened = min(entry.date for entry in entries)
        lines += ["", *(f"{opened} open {account}" for account in sorted(set(accounts.values())))]
    for entry in entries:
        payee = f"{_string(entry.account_name)} " if entry.account_name else ""
        lines += ["", f"{entry.date} * {payee}{_string(entry.description)}"]
        lines += [f'  entry: "{entry.id}"', f"  event: {_string(entry.event)}", f"  source: {_string(f'{entry.source_type}:{entry.source_id}')}"]
        if entry.document:
            lines.append(f"  document: {_string(entry.document)}")
        lines += [f"  {accounts[p.account]}  {_plain(p.debit - p.credit, p.currency)} {p.currency}" for p in entry.postings]
    content = "\n".join(lines) + "\n"
    return Export(content.encode("utf-8"), "text/plain; charset=utf-8", f"journal-{_span(options)}.beancount")


_WRITERS: dict[str, Callable[[list[EntryView], ExportOptions], Export]] = {
    "csv": _csv, "datev": _datev, "xero": _xero, "quickbooks": _quickbooks, "beancount": _beancount,
}
