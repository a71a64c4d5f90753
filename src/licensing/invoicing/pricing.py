"""Line and invoice arithmetic: money rounded half-up once per line, tax summed per rate."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction

from licensing.money import ZERO, round_credits_down, round_money

HUNDRED = Decimal(100)


def share(amount: Decimal, fraction: Fraction) -> Decimal:
    """``amount`` x ``fraction``, exact to Decimal's precision (rounding is the caller's)."""
    return amount * Decimal(fraction.numerator) / Decimal(fraction.denominator)


def line_net(quantity: Decimal, unit_price: Decimal, currency: str, fraction: Fraction = Fraction(1)) -> Decimal:
    return round_money(share(quantity * unit_price, fraction), currency)


def line_credits(pack_credits: Decimal, quantity: Decimal, fraction: Fraction = Fraction(1)) -> Decimal:
    """Credits of a pack line; a pro-rated share is rounded down to two places."""
    return round_credits_down(share(pack_credits * quantity, fraction))


def tax_of(net: Decimal, rate: Decimal, currency: str) -> Decimal:
    return round_money(net * rate / HUNDRED, currency)


def totals(lines: Iterable[tuple[Decimal, Decimal]], currency: str) -> tuple[Decimal, Decimal, Decimal, dict[Decimal, tuple[Decimal, Decimal]]]:
    """(net, tax, gross, {rate: (net, tax)}) of ``(net, tax_rate)`` pairs; tax per rate is
    computed on the rate's summed net (EN 16931), not summed from rounded line taxes."""
    per_rate: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for net, rate in lines:
        per_rate[rate.normalize()] += net
    breakdown = {rate: (net, tax_of(net, rate, currency)) for rate, net in sorted(per_rate.items())}
    net = sum((item[0] for item in breakdown.values()), ZERO)
    tax = sum((item[1] for item in breakdown.values()), ZERO)
    return net, tax, net + tax, breakdown
