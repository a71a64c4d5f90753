"""The operator's settings of the books, kept in the database (``books_settings``, one row):
the chart of accounts and the lock date. Changed through the API by admins."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from licensing.books.chart import DEFAULT_PRESET, PRESETS, ROLES, Chart, LedgerAccount, rate_key
from licensing.books.models import BooksSettings
from licensing.errors import ValidationFailed

_CODE_MAX, _NAME_MAX = 20, 200


def _row(session: Session, *, lock: bool = False) -> BooksSettings:
    row = session.get(BooksSettings, 1, with_for_update=lock)
    if row is None:
        row = BooksSettings(id=1)
        session.add(row)
        session.flush()
    return row


def chart(session: Session) -> Chart:
    row = session.get(BooksSettings, 1)
    if row is None or row.chart is None:
        return PRESETS[DEFAULT_PRESET]
    return parse_chart(json.loads(row.chart))


def parse_chart(body: dict[str, Any]) -> Chart:
    """A chart from its JSON form: ``preset`` (``plain``, ``skr03``, ``skr04``; default plain)
    gives every role its account; ``accounts`` (role -> code, or {code, name}), ``vat_payable``
    (rate -> code or {code, name}) and ``tax_keys`` (rate -> DATEV BU-Schlüssel) replace some."""
    if not isinstance(body, dict):
        raise ValidationFailed("the chart of accounts is a JSON object", field="body")
    unknown = set(body) - {"preset", "accounts", "vat_payable", "tax_keys"}
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    preset_name = body.get("preset") or DEFAULT_PRESET
    if preset_name not in PRESETS:
        raise ValidationFailed(f"preset must be one of {', '.join(PRESETS)}", field="preset")
    preset = PRESETS[preset_name]
    accounts = dict(preset.accounts)
    for role, given in _mapping(body, "accounts").items():
        if role not in ROLES:
            raise ValidationFailed(f"{role!r} is not a role; the roles are {', '.join(ROLES)}", field=f"accounts.{role}")
        accounts[role] = _account(given, accounts[role], f"accounts.{role}", PRESETS["plain"].accounts[role].name)
    vat = dict(preset.vat_payable)
    for rate, given in _mapping(body, "vat_payable").items():
        key = _rate(rate, f"vat_payable.{rate}")
        vat[key] = _account(given, vat.get(key, accounts["vat_payable"]), f"vat_payable.{rate}", f"VAT payable {key} %")
    keys = dict(preset.tax_keys)
    for rate, key in _mapping(body, "tax_keys").items():
        if not isinstance(key, str) or len(key) > 4 or (not key.isdigit() and key != ""):
            raise ValidationFailed("a tax key is up to 4 digits (or empty for none)", field=f"tax_keys.{rate}")
        keys[_rate(rate, f"tax_keys.{rate}")] = key
    return Chart(preset=preset_name, accounts=accounts, vat_payable=vat, tax_keys=keys)


def _mapping(body: dict, name: str) -> dict:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{name} is an object", field=name)
    return value


def _rate(text: str, field: str) -> str:
    try:
        from decimal import Decimal, InvalidOperation

        rate = Decimal(text)
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed("a rate is a percentage such as \"19.00\"", field=field) from None
    if not rate.is_finite() or rate < 0 or rate > 100:
        raise ValidationFailed("a rate is a percentage between 0 and 100", field=field)
    return rate_key(rate)


def _account(given: Any, current: LedgerAccount, field: str, plain_name: str) -> LedgerAccount:
    if isinstance(given, str):  # a code alone: the preset's name goes with the preset's code only
        code, name = given, current.name if given.strip() == current.code else plain_name
    elif isinstance(given, dict) and set(given) <= {"code", "name"} and "code" in given:
        code, name = given["code"], given.get("name", current.name)
    else:
        raise ValidationFailed("an account is a code, or {code, name}", field=field)
    if not isinstance(code, str) or not code.strip() or len(code) > _CODE_MAX or not code.isprintable():
        raise ValidationFailed(f"an account code is 1 to {_CODE_MAX} printable characters", field=field)
    if not isinstance(name, str) or not name.strip() or len(name) > _NAME_MAX or not name.isprintable():
        raise ValidationFailed(f"an account name is 1 to {_NAME_MAX} printable characters", field=field)
    return LedgerAccount(code.strip(), name.strip())


def save_chart(session: Session, body: dict[str, Any], *, at: datetime) -> Chart:
    parsed = parse_chart(body)
    row = _row(session, lock=True)
    row.chart, row.updated_at = json.dumps(parsed.as_dict()), at
    session.add(row)
    return parsed


def set_lock_date(session: Session, lock_date: date | None, *, at: datetime) -> date | None:
    row = _row(session, lock=True)
    row.lock_date, row.updated_at = lock_date, at
    session.add(row)
    return lock_date
