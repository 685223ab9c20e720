"""The plan and credit catalogue, read from Stripe product and price metadata.

Prices are discovered by metadata, never by id, so an operator reprices or
adds a tier in Stripe's dashboard without a deploy. Everything here is a pure
function of the plain dicts Stripe's API returns: a misconfigured price becomes
a readable issue in ``Catalogue.issues`` (shown at start-up and by
``spu stripe check``), never an exception at request time.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ledger.units import UNITS_PER_SPU, format_spus, spus_to_units

Json = Mapping[str, Any]

PRODUCT_TAG_KEY = "product"
PRICE_TYPE_KEY = "price_type"
BASE_PRICE = "base"
CREDIT_PRICE = "credit"
FREE_TIER = "free"
"""The tier of an org without a plan; no Stripe price may claim it."""

DEFAULT_MAX_PURCHASE_UNITS = 1_000_000 * UNITS_PER_SPU
"""Largest single credit purchase when the price sets no ``max_spu_purchase``."""


class CatalogueError(ValueError):
    """A Stripe price cannot be read as a plan or a credit price; the message says why."""


class PurchaseRejected(ValueError):
    """A credit purchase outside the credit price's bounds or steps."""


@dataclass(frozen=True, slots=True)
class PlanPrice:
    """A recurring ``price_type=base`` price: one tier's allowance per billing period."""

    price_id: str
    tier: str
    allowance_units: int
    active: bool
    created: int
    """Epoch seconds; the newest active price of a tier is the one sold."""
    unit_amount: int | None
    """Minor currency units per period (cents), as Stripe bills it."""
    currency: str
    interval: str
    interval_count: int


@dataclass(frozen=True, slots=True)
class CreditPrice:
    """A one-time ``price_type=credit`` price; its quantity counts SPUs (or ``spus_per_unit``).

    With ``transform_quantity.divide_by`` Stripe bills ``unit_amount`` per
    ``divide_by`` quantity units, so purchases go in whole packages: a
    remainder would be given away (rounding down) or charged unbought (up).
    """

    price_id: str
    active: bool
    created: int
    unit_amount: int
    currency: str
    units_per_quantity: int
    """Ledger units one quantity unit buys (``spus_per_unit``, default 1 SPU)."""
    quantity_per_package: int
    """``transform_quantity.divide_by``, or 1: the quantity ``unit_amount`` pays for."""
    min_purchase_units: int
    max_purchase_units: int

    @property
    def package_units(self) -> int:
        """The smallest step a purchase can take."""
        return self.units_per_quantity * self.quantity_per_package

    def quantity_for(self, amount_units: int) -> int:
        """The line-item quantity that buys ``amount_units``, or why it cannot be bought."""
        if not self.min_purchase_units <= amount_units <= self.max_purchase_units:
            raise PurchaseRejected(
                f"a purchase must be between {format_spus(self.min_purchase_units)} and"
                f" {format_spus(self.max_purchase_units)} SPUs, not {format_spus(amount_units)}"
            )
        if amount_units % self.package_units:
            raise PurchaseRejected(
                f"SPUs are sold in multiples of {format_spus(self.package_units)},"
                f" so {format_spus(amount_units)} cannot be bought"
            )
        return amount_units // self.units_per_quantity

    def amount_due(self, quantity: int) -> int:
        """What Stripe charges for ``quantity`` whole packages, in minor currency units."""
        return self.unit_amount * quantity // self.quantity_per_package


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the tagged Stripe product sells, and what is wrong with its metadata."""

    product_id: str | None
    plans: tuple[PlanPrice, ...]
    """Every readable base price, archived ones included (grandfathered subscribers)."""
    credit: CreditPrice | None
    markup: Decimal | None
    """Product metadata ``markup``, overriding the configured one when set."""
    usd_per_spu: Decimal | None
    issues: tuple[str, ...]

    def plan_for_tier(self, tier: str) -> PlanPrice | None:
        """The price sold for a tier now: its newest active price."""
        candidates = [plan for plan in self.plans if plan.active and plan.tier == tier.lower()]
        return max(candidates, key=_newest, default=None)

    def plan_for_price(self, price_id: str) -> PlanPrice | None:
        return next((plan for plan in self.plans if plan.price_id == price_id), None)

    def tiers(self) -> tuple[PlanPrice, ...]:
        """One plan per tier on sale, by tier name."""
        names = sorted({plan.tier for plan in self.plans if plan.active})
        return tuple(plan for name in names if (plan := self.plan_for_tier(name)) is not None)


def metadata(obj: Json) -> Mapping[str, str]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def object_id(value: object) -> str | None:
    """An id whether Stripe sent it bare or as an expanded object."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _newest(price: PlanPrice | CreditPrice) -> tuple[int, str]:
    return price.created, price.price_id


def _spus_as_units(price_id: str, key: str, text: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise CatalogueError(f"price {price_id}: metadata {key}={text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise CatalogueError(f"price {price_id}: metadata {key}={text!r} must be zero or more")
    try:
        return spus_to_units(value)
    except ValueError as error:
        raise CatalogueError(f"price {price_id}: metadata {key}: {error}") from None


def _required(price_id: str, meta: Mapping[str, str], key: str) -> str:
    value = meta.get(key)
    if value is None or not str(value).strip():
        raise CatalogueError(f"price {price_id}: metadata {key!r} is missing")
    return str(value)


def _price_id(price: Json) -> str:
    value = price.get("id")
    if not isinstance(value, str):
        raise CatalogueError(f"a price has no id: {dict(price)!r}")
    return value


def _int_field(price: Json, key: str, default: int = 0) -> int:
    value = price.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def plan_from_price(price: Json) -> PlanPrice:
    """Read a base price; raises ``CatalogueError`` naming the field at fault."""
    price_id = _price_id(price)
    meta = metadata(price)
    if meta.get(PRICE_TYPE_KEY) != BASE_PRICE:
        raise CatalogueError(f"price {price_id}: metadata {PRICE_TYPE_KEY} is not {BASE_PRICE!r}")
    tier = _required(price_id, meta, "tier").strip().lower()
    if tier == FREE_TIER:
        raise CatalogueError(
            f"price {price_id}: tier {FREE_TIER!r} is reserved for orgs without a plan"
        )
    allowance_units = _spus_as_units(
        price_id, "included_spus", _required(price_id, meta, "included_spus")
    )
    recurring = price.get("recurring")
    if not isinstance(recurring, Mapping):
        raise CatalogueError(f"price {price_id}: a base price must be recurring")
    unit_amount = price.get("unit_amount")
    return PlanPrice(
        price_id=price_id,
        tier=tier,
        allowance_units=allowance_units,
        active=bool(price.get("active")),
        created=_int_field(price, "created"),
        unit_amount=unit_amount if isinstance(unit_amount, int) else None,
        currency=str(price.get("currency") or ""),
        interval=str(recurring.get("interval") or ""),
        interval_count=_int_field(recurring, "interval_count", 1),
    )


def credit_from_price(price: Json) -> CreditPrice:
    """Read a credit price; raises ``CatalogueError`` naming the field at fault."""
    price_id = _price_id(price)
    meta = metadata(price)
    if meta.get(PRICE_TYPE_KEY) != CREDIT_PRICE:
        raise CatalogueError(f"price {price_id}: metadata {PRICE_TYPE_KEY} is not {CREDIT_PRICE!r}")
    if price.get("recurring") is not None or price.get("type") == "recurring":
        raise CatalogueError(f"price {price_id}: a credit price must be one-time, not recurring")
    unit_amount = price.get("unit_amount")
    if isinstance(unit_amount, bool) or not isinstance(unit_amount, int) or unit_amount <= 0:
        raise CatalogueError(
            f"price {price_id}: a credit price needs a fixed positive unit_amount per unit"
        )
    transform = price.get("transform_quantity")
    divide_by = transform.get("divide_by") if isinstance(transform, Mapping) else 1
    if isinstance(divide_by, bool) or not isinstance(divide_by, int) or divide_by < 1:
        raise CatalogueError(f"price {price_id}: transform_quantity.divide_by must be 1 or more")
    units_per_quantity = _spus_as_units(price_id, "spus_per_unit", meta.get("spus_per_unit", "1"))
    if units_per_quantity == 0:
        raise CatalogueError(f"price {price_id}: metadata spus_per_unit must be more than 0")
    package_units = units_per_quantity * divide_by
    min_units = (
        _spus_as_units(price_id, "min_spu_purchase", meta["min_spu_purchase"])
        if meta.get("min_spu_purchase")
        else package_units
    )
    max_units = (
        _spus_as_units(price_id, "max_spu_purchase", meta["max_spu_purchase"])
        if meta.get("max_spu_purchase")
        else max(DEFAULT_MAX_PURCHASE_UNITS, min_units)
    )
    if min_units > max_units:
        raise CatalogueError(
            f"price {price_id}: min_spu_purchase ({format_spus(min_units)}) is more than"
            f" max_spu_purchase ({format_spus(max_units)})"
        )
    return CreditPrice(
        price_id=price_id,
        active=bool(price.get("active")),
        created=_int_field(price, "created"),
        unit_amount=unit_amount,
        currency=str(price.get("currency") or ""),
        units_per_quantity=units_per_quantity,
        quantity_per_package=divide_by,
        min_purchase_units=min_units,
        max_purchase_units=max_units,
    )


def _policy_number(product: Json, key: str, issues: list[str], *, positive: bool) -> Decimal | None:
    text = metadata(product).get(key)
    if text is None or not str(text).strip():
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or (positive and value == 0):
        bound = "more than 0" if positive else "0 or more"
        issues.append(
            f"product {product.get('id')}: metadata {key}={text!r} must be {bound}; ignored"
        )
        return None
    return value


def _choose_product(products: Iterable[Json], tag: str, issues: list[str]) -> Json | None:
    tagged = [p for p in products if metadata(p).get(PRODUCT_TAG_KEY) == tag]
    active = [p for p in tagged if p.get("active")]
    if not active:
        archived = f" ({len(tagged)} archived)" if tagged else ""
        issues.append(
            f"no active Stripe product has metadata {PRODUCT_TAG_KEY}={tag!r}{archived}:"
            " checkout and plans are unavailable"
        )
        return None
    chosen = max(active, key=lambda p: (_int_field(p, "created"), str(p.get("id"))))
    if len(active) > 1:
        others = ", ".join(sorted(str(p.get("id")) for p in active if p is not chosen))
        issues.append(
            f"{len(active)} active products have metadata {PRODUCT_TAG_KEY}={tag!r}: using the"
            f" newest, {chosen.get('id')}; archive or retag the others ({others})"
        )
    return chosen


def _read_prices(
    prices: Iterable[Json], product_id: str, issues: list[str]
) -> tuple[list[PlanPrice], list[CreditPrice]]:
    plans: list[PlanPrice] = []
    credits: list[CreditPrice] = []
    for price in prices:
        if object_id(price.get("product")) != product_id:
            continue
        kind = metadata(price).get(PRICE_TYPE_KEY)
        archived = "" if price.get("active") else " (archived)"
        try:
            if kind == BASE_PRICE:
                plans.append(plan_from_price(price))
            elif kind == CREDIT_PRICE:
                credits.append(credit_from_price(price))
            elif price.get("active"):
                issues.append(
                    f"price {price.get('id')}: metadata {PRICE_TYPE_KEY}={kind!r} is neither"
                    f" {BASE_PRICE!r} nor {CREDIT_PRICE!r}; ignored"
                )
        except CatalogueError as error:
            issues.append(f"{error}{archived}")
    return plans, credits


def _check_duplicates(
    plans: list[PlanPrice], credits: list[CreditPrice], issues: list[str]
) -> None:
    by_tier: dict[str, list[PlanPrice]] = {}
    for plan in plans:
        if plan.active:
            by_tier.setdefault(plan.tier, []).append(plan)
    for tier, offered in sorted(by_tier.items()):
        if len(offered) > 1:
            newest = max(offered, key=_newest)
            ids = ", ".join(sorted(plan.price_id for plan in offered))
            issues.append(
                f"tier {tier!r} has {len(offered)} active prices ({ids}): checkout sells the"
                f" newest, {newest.price_id}; archive the others"
            )
    active_credits = [credit for credit in credits if credit.active]
    if len(active_credits) > 1:
        newest_credit = max(active_credits, key=_newest)
        ids = ", ".join(sorted(credit.price_id for credit in active_credits))
        issues.append(
            f"{len(active_credits)} active credit prices ({ids}): checkout sells the newest,"
            f" {newest_credit.price_id}; archive the others"
        )
    if not by_tier:
        issues.append(f"no active {PRICE_TYPE_KEY}={BASE_PRICE!r} price: no plan can be bought")
    if not active_credits:
        issues.append(
            f"no active {PRICE_TYPE_KEY}={CREDIT_PRICE!r} price: credits cannot be bought"
        )


def parse_catalogue(products: Iterable[Json], prices: Iterable[Json], tag: str) -> Catalogue:
    """Build the catalogue from every product and every price of the tagged product."""
    issues: list[str] = []
    product = _choose_product(products, tag, issues)
    if product is None:
        return Catalogue(None, (), None, None, None, tuple(issues))
    product_id = str(product.get("id"))
    markup = _policy_number(product, "markup", issues, positive=False)
    usd_per_spu = _policy_number(product, "usd_per_spu", issues, positive=True)
    plans, credits = _read_prices(prices, product_id, issues)
    _check_duplicates(plans, credits, issues)
    credit = max((c for c in credits if c.active), key=_newest, default=None)
    ordered = tuple(sorted(plans, key=lambda plan: (plan.tier, plan.created, plan.price_id)))
    return Catalogue(product_id, ordered, credit, markup, usd_per_spu, tuple(issues))
