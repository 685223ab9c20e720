"""The catalogue read from Stripe metadata: what is sold, and every misconfiguration named."""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import UNITS_PER_SPU
from proxy.billing.catalogue.prices import (
    DEFAULT_MAX_PURCHASE_UNITS,
    CatalogueError,
    PurchaseRejected,
    credit_from_price,
    parse_catalogue,
    plan_from_price,
)
from tests.fakes.stripe_objects import price, product

SPU = UNITS_PER_SPU
TAG = "doc_router"
PRODUCT = product("prod_1", metadata={"product": TAG}, created=100)


def base(price_id: str, tier: str, included: str, *, created: int = 200, **kw: Any) -> dict:
    metadata = {"price_type": "base", "tier": tier, "included_spus": included}
    return price(
        price_id,
        product_id="prod_1",
        unit_amount=2000,
        metadata=metadata,
        created=created,
        interval="month",
        **kw,
    )


def credit(price_id: str = "price_credit", *, created: int = 300, **metadata: str) -> dict:
    return price(
        price_id,
        product_id="prod_1",
        unit_amount=metadata.pop("unit_amount", 100),  # type: ignore[arg-type]
        metadata={"price_type": "credit", **metadata},
        created=created,
        divide_by=int(metadata.pop("divide_by")) if "divide_by" in metadata else None,
    )


def test_a_complete_catalogue_has_no_issues_and_sells_each_tier_and_credits() -> None:
    catalogue = parse_catalogue(
        [PRODUCT],
        [base("p_ind", "Individual", "5000"), base("p_team", "team", "25000"), credit()],
        TAG,
    )

    assert catalogue.issues == ()
    assert catalogue.product_id == "prod_1"
    assert [(p.tier, p.allowance_units) for p in catalogue.tiers()] == [
        ("individual", 5000 * SPU),
        ("team", 25000 * SPU),
    ]
    assert catalogue.credit is not None and catalogue.credit.price_id == "price_credit"


def test_a_tier_sells_its_newest_active_price_and_archived_prices_stay_readable() -> None:
    catalogue = parse_catalogue(
        [PRODUCT],
        [
            base("p_old", "individual", "5000", created=200, active=False),
            base("p_new", "individual", "6000", created=400),
            credit(),
        ],
        TAG,
    )

    sold = catalogue.plan_for_tier("individual")
    grandfathered = catalogue.plan_for_price("p_old")
    assert sold is not None and sold.price_id == "p_new"
    assert grandfathered is not None and grandfathered.allowance_units == 5000 * SPU
    assert catalogue.issues == ()


def test_only_the_tagged_active_product_and_its_own_prices_count() -> None:
    other = product("prod_other", metadata={"product": "another_app"}, created=50)
    foreign = price(
        "p_foreign",
        product_id="prod_other",
        unit_amount=1,
        metadata={"price_type": "base"},
        created=1,
        interval="month",
    )

    catalogue = parse_catalogue(
        [other, PRODUCT], [foreign, base("p_ind", "individual", "5000"), credit()], TAG
    )

    assert catalogue.product_id == "prod_1"
    assert [p.price_id for p in catalogue.plans] == ["p_ind"]


def test_no_active_tagged_product_is_an_issue_not_an_error() -> None:
    archived = product("prod_1", metadata={"product": TAG}, created=1, active=False)

    catalogue = parse_catalogue([archived], [base("p", "individual", "1")], TAG)

    assert catalogue.product_id is None
    assert catalogue.plans == ()
    assert catalogue.issues == (
        "no active Stripe product has metadata product='doc_router' (1 archived):"
        " checkout and plans are unavailable",
    )


def test_two_tagged_products_use_the_newest_and_say_so() -> None:
    newer = product("prod_2", metadata={"product": TAG}, created=999)

    catalogue = parse_catalogue([PRODUCT, newer], [], TAG)

    assert catalogue.product_id == "prod_2"
    assert any("2 active products" in issue and "prod_1" in issue for issue in catalogue.issues)


@pytest.mark.parametrize(
    ("metadata", "issue"),
    [
        ({"price_type": "base", "tier": "team"}, "metadata 'included_spus' is missing"),
        (
            {"price_type": "base", "tier": "team", "included_spus": "lots"},
            "metadata included_spus='lots' is not a number",
        ),
        (
            {"price_type": "base", "tier": "team", "included_spus": "-5"},
            "metadata included_spus='-5' must be zero or more",
        ),
        (
            {"price_type": "base", "tier": "team", "included_spus": "0.0000001"},
            "finer than the ledger's unit",
        ),
        ({"price_type": "base", "included_spus": "5"}, "metadata 'tier' is missing"),
        ({"price_type": "base", "tier": "free", "included_spus": "5"}, "tier 'free' is reserved"),
        ({"price_type": "basic"}, "metadata price_type='basic' is neither 'base' nor 'credit'"),
    ],
)
def test_a_misconfigured_base_price_is_reported_and_left_out(
    metadata: dict[str, str], issue: str
) -> None:
    broken = price(
        "p_bad", product_id="prod_1", unit_amount=1, metadata=metadata, created=5, interval="month"
    )

    catalogue = parse_catalogue(
        [PRODUCT], [broken, base("p_ind", "individual", "5"), credit()], TAG
    )

    assert [p.price_id for p in catalogue.plans] == ["p_ind"]
    assert len(catalogue.issues) == 1
    assert issue in catalogue.issues[0]
    assert catalogue.issues[0].startswith("price p_bad")


def test_a_one_time_base_price_is_refused() -> None:
    one_time = price(
        "p_once",
        product_id="prod_1",
        unit_amount=1,
        created=1,
        metadata={"price_type": "base", "tier": "team", "included_spus": "5"},
    )

    with pytest.raises(CatalogueError, match="a base price must be recurring"):
        plan_from_price(one_time)


def test_two_active_prices_for_one_tier_are_reported() -> None:
    catalogue = parse_catalogue(
        [PRODUCT],
        [base("p_a", "team", "1", created=1), base("p_b", "team", "2", created=2), credit()],
        TAG,
    )

    assert catalogue.issues == (
        "tier 'team' has 2 active prices (p_a, p_b): checkout sells the newest, p_b;"
        " archive the others",
    )


def test_an_issue_on_an_archived_price_says_it_is_archived() -> None:
    catalogue = parse_catalogue(
        [PRODUCT],
        [base("p_old", "team", "x", active=False), base("p", "team", "1"), credit()],
        TAG,
    )

    assert catalogue.issues == (
        "price p_old: metadata included_spus='x' is not a number (archived)",
    )


def test_missing_plans_and_credit_prices_are_reported() -> None:
    catalogue = parse_catalogue([PRODUCT], [], TAG)

    assert catalogue.issues == (
        "no active price_type='base' price: no plan can be bought",
        "no active price_type='credit' price: credits cannot be bought",
    )


def test_product_metadata_sets_markup_and_usd_per_spu() -> None:
    priced = product(
        "prod_1", metadata={"product": TAG, "markup": "0.4", "usd_per_spu": "0.02"}, created=1
    )

    catalogue = parse_catalogue([priced], [base("p", "team", "1"), credit()], TAG)

    assert (catalogue.markup, catalogue.usd_per_spu) == (Decimal("0.4"), Decimal("0.02"))
    assert catalogue.issues == ()


@pytest.mark.parametrize(
    ("metadata", "issue"),
    [
        ({"markup": "-0.1"}, "markup='-0.1' must be 0 or more"),
        ({"usd_per_spu": "0"}, "usd_per_spu='0' must be more than 0"),
        ({"usd_per_spu": "a cent"}, "usd_per_spu='a cent' must be more than 0"),
    ],
)
def test_bad_pricing_metadata_is_ignored_and_reported(metadata: dict[str, str], issue: str) -> None:
    priced = product("prod_1", metadata={"product": TAG, **metadata}, created=1)

    catalogue = parse_catalogue([priced], [base("p", "team", "1"), credit()], TAG)

    assert (catalogue.markup, catalogue.usd_per_spu) == (None, None)
    assert [i for i in catalogue.issues if issue in i]


def test_a_credit_price_in_packages_sells_whole_packages_within_its_bounds() -> None:
    sold = credit_from_price(
        credit(divide_by="100", min_spu_purchase="200", max_spu_purchase="5000")
    )

    assert sold.package_units == 100 * SPU
    assert sold.quantity_for(1200 * SPU) == 1200
    assert sold.amount_due(1200) == 1200
    with pytest.raises(PurchaseRejected, match="multiples of 100"):
        sold.quantity_for(250 * SPU)
    with pytest.raises(PurchaseRejected, match="between 200 and 5000 SPUs, not 100"):
        sold.quantity_for(100 * SPU)
    with pytest.raises(PurchaseRejected, match="between 200 and 5000 SPUs, not 5100"):
        sold.quantity_for(5100 * SPU)


def test_spus_per_unit_makes_one_quantity_unit_buy_several_spus() -> None:
    sold = credit_from_price(credit(spus_per_unit="10", unit_amount=5))  # type: ignore[arg-type]

    assert sold.quantity_for(1000 * SPU) == 100
    assert sold.amount_due(100) == 500
    assert sold.min_purchase_units == 10 * SPU
    assert sold.max_purchase_units == DEFAULT_MAX_PURCHASE_UNITS


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"recurring": {"interval": "month"}, "type": "recurring"}, "must be one-time"),
        ({"unit_amount": None}, "fixed positive unit_amount"),
        ({"transform_quantity": {"divide_by": 0, "round": "up"}}, "divide_by must be 1 or more"),
        ({"metadata": {"price_type": "credit", "spus_per_unit": "0"}}, "must be more than 0"),
        (
            {
                "metadata": {
                    "price_type": "credit",
                    "min_spu_purchase": "9",
                    "max_spu_purchase": "5",
                }
            },
            "min_spu_purchase (9) is more than max_spu_purchase (5)",
        ),
    ],
)
def test_a_misconfigured_credit_price_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        credit_from_price({**credit(), **changes})


def test_two_active_credit_prices_sell_the_newest_and_say_so() -> None:
    catalogue = parse_catalogue(
        [PRODUCT],
        [base("p", "team", "1"), credit("c_old", created=1), credit("c_new", created=2)],
        TAG,
    )

    assert catalogue.credit is not None and catalogue.credit.price_id == "c_new"
    assert catalogue.issues == (
        "2 active credit prices (c_new, c_old): checkout sells the newest, c_new;"
        " archive the others",
    )


@given(
    unit_amount=st.integers(1, 10_000),
    divide_by=st.integers(1, 1000),
    spus_per_unit=st.integers(1, 50),
    packages=st.integers(1, 500),
)
def test_a_purchase_of_whole_packages_charges_unit_amount_per_package(
    unit_amount: int, divide_by: int, spus_per_unit: int, packages: int
) -> None:
    sold = credit_from_price(
        credit(
            unit_amount=unit_amount,  # type: ignore[arg-type]
            divide_by=str(divide_by),
            spus_per_unit=str(spus_per_unit),
            max_spu_purchase=str(10**9),
        )
    )

    quantity = sold.quantity_for(packages * sold.package_units)

    assert quantity * sold.units_per_quantity == packages * sold.package_units
    assert sold.amount_due(quantity) == packages * unit_amount
