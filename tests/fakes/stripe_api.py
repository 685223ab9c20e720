"""A stateful fake of the slice of Stripe's API the gateway uses, answered through respx.

The stripe library's real request code runs unchanged (its HTTPX client,
form encoding, pagination, idempotency keys, retries); only the HTTP answers
come from here. Scenario steps (a buyer paying, a renewal, a refund) change
the fake's state and return the webhook events Stripe would send, as
snapshots, for the test to sign and deliver in any order.
"""

import copy
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import respx

from tests.fakes import stripe_objects as build

API_BASE = "https://api.stripe.com"
PERIOD_S = 30 * 86_400
DEFAULT_PAGE = 10
MAX_PAGE = 100

Obj = dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    """One request as Stripe received it: form or query parameters, flattened as sent."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


def _error(status: int, message: str, *, should_retry: bool | None = None) -> httpx.Response:
    headers = {"request-id": "req_fake"}
    if should_retry is not None:
        headers["stripe-should-retry"] = "true" if should_retry else "false"
    body = {
        "error": {
            "type": "invalid_request_error" if status < 500 else "api_error",
            "message": message,
        }
    }
    return httpx.Response(status, json=body, headers=headers)


class FakeStripe:
    def __init__(self, *, start_s: int = 1_800_000_000) -> None:
        self.now_s = start_s
        self.products: dict[str, Obj] = {}
        self.prices: dict[str, Obj] = {}
        self.customers: dict[str, Obj] = {}
        self.sessions: dict[str, Obj] = {}
        self.line_items: dict[str, list[Obj]] = {}
        self.subscriptions: dict[str, Obj] = {}
        self.charges: dict[str, Obj] = {}
        self.refunds: dict[str, Obj] = {}
        self.portal_sessions: dict[str, Obj] = {}
        self.payment_intents: dict[str, Obj] = {}
        self.card_outcome = "succeeded"
        """What confirming the next off-session PaymentIntent does: succeeded, declined or
        requires_action."""
        self.requests: list[Recorded] = []
        self.failures: list[tuple[str, str]] = []
        """(method, path regex) answered once each with a non-retryable 500."""
        self._idempotent: dict[tuple[str, str], httpx.Response] = {}
        self._ids = itertools.count(1)

    # --- identity and time -------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def tick(self, seconds: int = 1) -> int:
        self.now_s += seconds
        return self.now_s

    def event(self, kind: str, obj: Obj) -> Obj:
        return build.event(
            self.new_id("evt"), kind=kind, obj=copy.deepcopy(obj), created=self.tick()
        )

    # --- catalogue ------------------------------------------------------------------------

    def add_product(self, metadata: dict[str, str], *, active: bool = True) -> Obj:
        obj = build.product(
            self.new_id("prod"), metadata=metadata, created=self.tick(), active=active
        )
        self.products[obj["id"]] = obj
        return obj

    def add_price(
        self,
        product_id: str,
        *,
        unit_amount: int,
        metadata: dict[str, str],
        interval: str | None = None,
        divide_by: int | None = None,
        active: bool = True,
    ) -> Obj:
        obj = build.price(
            self.new_id("price"),
            product_id=product_id,
            unit_amount=unit_amount,
            metadata=metadata,
            created=self.tick(),
            interval=interval,
            divide_by=divide_by,
            active=active,
        )
        self.prices[obj["id"]] = obj
        return obj

    def archive_price(self, price_id: str) -> Obj:
        self.prices[price_id]["active"] = False
        return self.event("price.updated", self.prices[price_id])

    # --- scenario steps (return the events Stripe would send) -----------------------------

    def complete_checkout(self, session_id: str, *, payment_status: str = "paid") -> list[Obj]:
        """The buyer finishes Checkout; ``unpaid`` models a delayed payment method."""
        session = self.sessions[session_id]
        session["status"] = "complete"
        session["payment_status"] = payment_status
        events: list[Obj] = []
        if session["mode"] == "payment":
            intent = self._intent(
                amount=session["amount_total"],
                customer_id=session["customer"],
                metadata={},
                status="succeeded" if payment_status == "paid" else "processing",
            )
            session["payment_intent"] = intent["id"]
            if payment_status == "paid":
                self._charge(session)
        else:
            item = self.line_items[session_id][0]
            subscription = self._subscribe(session["customer"], item["price"], session["metadata"])
            session["subscription"] = subscription["id"]
            events += [
                self.event("customer.subscription.created", subscription),
                self._invoice_event(subscription, "subscription_create"),
            ]
        events.append(self.event("checkout.session.completed", session))
        return events

    def async_payment_succeeded(self, session_id: str) -> list[Obj]:
        session = self.sessions[session_id]
        session["payment_status"] = "paid"
        self._charge(session)
        return [self.event("checkout.session.async_payment_succeeded", session)]

    def renew(self, subscription_id: str) -> list[Obj]:
        """The next billing period starts and its invoice is paid."""
        subscription = self.subscriptions[subscription_id]
        item = subscription["items"]["data"][0]
        item["current_period_start"] = item["current_period_end"]
        item["current_period_end"] = item["current_period_start"] + PERIOD_S
        self.now_s = max(self.now_s, item["current_period_start"])
        return [
            self.event("customer.subscription.updated", subscription),
            self._invoice_event(subscription, "subscription_cycle"),
        ]

    def cancel(self, subscription_id: str) -> list[Obj]:
        subscription = self.subscriptions[subscription_id]
        subscription["status"] = "canceled"
        subscription["canceled_at"] = subscription["ended_at"] = self.tick()
        return [self.event("customer.subscription.deleted", subscription)]

    def set_status(self, subscription_id: str, status: str) -> list[Obj]:
        self.subscriptions[subscription_id]["status"] = status
        return [self.event("customer.subscription.updated", self.subscriptions[subscription_id])]

    def refund(self, charge_id: str, amount: int) -> list[Obj]:
        charge = self.charges[charge_id]
        refund = build.refund(
            self.new_id("re"), charge_obj=charge, amount=amount, created=self.tick()
        )
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        return [self.event("refund.created", refund), self.event("charge.refunded", charge)]

    def dispute(self, charge_id: str) -> list[Obj]:
        charge = self.charges[charge_id]
        charge["disputed"] = True
        dispute = build.dispute(
            self.new_id("dp"), charge_obj=charge, amount=charge["amount"], created=self.tick()
        )
        return [self.event("charge.dispute.created", dispute)]

    def save_card(self, customer_id: str) -> str:
        """The customer's card becomes its default payment method (as a saving Checkout does)."""
        payment_method = self.new_id("pm")
        self.customers[customer_id]["invoice_settings"]["default_payment_method"] = payment_method
        return payment_method

    def intent_succeeded(self, intent_id: str) -> list[Obj]:
        """An off-session PaymentIntent that was processing settles."""
        intent = self.payment_intents[intent_id]
        intent["status"] = "succeeded"
        return [self.event("payment_intent.succeeded", intent)]

    def intents_for(self, purpose: str) -> list[Obj]:
        return [
            i for i in self.payment_intents.values() if i["metadata"].get("purchase") == purpose
        ]

    def _intent(
        self, *, amount: int, customer_id: str | None, metadata: dict[str, str], status: str
    ) -> Obj:
        intent = {
            "id": self.new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "currency": "usd",
            "customer": customer_id,
            "metadata": metadata,
            "payment_method": self.new_id("pm"),
            "status": status,
            "created": self.tick(),
            "last_payment_error": None,
        }
        self.payment_intents[intent["id"]] = intent
        return intent

    def _create_intent(self, params: dict[str, str]) -> httpx.Response:
        """Confirmed at once (``confirm=true``) with the outcome ``card_outcome`` names."""
        customer_id = params.get("customer")
        if customer_id not in self.customers or not params.get("payment_method"):
            return _error(400, "A customer and a payment method are required.")
        outcome = self.card_outcome
        status = {"declined": "requires_payment_method"}.get(outcome, outcome)
        intent = self._intent(
            amount=int(params["amount"]),
            customer_id=customer_id,
            metadata=_nested(params, "metadata"),
            status=status,
        )
        intent["payment_method"] = params["payment_method"]
        if outcome != "declined":
            return self._json(intent)
        intent["last_payment_error"] = {
            "code": "card_declined",
            "decline_code": "insufficient_funds",
        }
        body = {
            "error": {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
                "payment_intent": intent,
            }
        }
        return httpx.Response(402, json=body, headers={"request-id": "req_fake"})

    def charge_of(self, session_id: str) -> Obj:
        intent = self.sessions[session_id]["payment_intent"]
        return next(c for c in self.charges.values() if c["payment_intent"] == intent)

    def subscription_of(self, customer_id: str) -> Obj:
        return next(s for s in self.subscriptions.values() if s["customer"] == customer_id)

    def _charge(self, session: Obj) -> Obj:
        charge = build.charge(
            self.new_id("ch"),
            amount=session["amount_total"],
            customer_id=session["customer"],
            payment_intent=session["payment_intent"],
            created=self.tick(),
        )
        self.charges[charge["id"]] = charge
        return charge

    def _subscribe(self, customer_id: str, price_obj: Obj, metadata: dict[str, str]) -> Obj:
        subscription_id = self.new_id("sub")
        start = self.tick()
        item = build.subscription_item(
            self.new_id("si"),
            price_obj=self.prices[price_obj["id"]],
            subscription_id=subscription_id,
            period_start=start,
            period_end=start + PERIOD_S,
        )
        subscription = build.subscription(
            subscription_id, customer_id=customer_id, item=item, created=start, metadata=metadata
        )
        self.subscriptions[subscription_id] = subscription
        return subscription

    def _invoice_event(self, subscription: Obj, reason: str) -> Obj:
        item = subscription["items"]["data"][0]
        invoice = build.invoice(
            self.new_id("in"),
            customer_id=subscription["customer"],
            subscription_id=subscription["id"],
            item=item,
            amount=item["price"]["unit_amount"],
            billing_reason=reason,
            created=self.tick(),
        )
        return self.event("invoice.paid", invoice)

    # --- HTTP -----------------------------------------------------------------------------

    def install(self, router: respx.Router) -> None:
        router.route(host="api.stripe.com").mock(side_effect=self._answer)

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def fail_once(self, method: str, path_pattern: str) -> None:
        self.failures.append((method, path_pattern))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        raw = request.content.decode() if method == "POST" else request.url.query.decode()
        params = dict(parse_qsl(raw, keep_blank_values=True))
        self.requests.append(Recorded(method, path, params, dict(request.headers)))
        for failure in self.failures:
            if failure[0] == method and re.fullmatch(failure[1], path):
                self.failures.remove(failure)
                return _error(500, "injected failure", should_retry=False)
        key = request.headers.get("idempotency-key")
        if method == "POST" and key and (key, path) in self._idempotent:
            return self._idempotent[(key, path)]
        response = self._route(method, path, params)
        if method == "POST" and key and response.status_code == 200:
            self._idempotent[(key, path)] = response
        return response

    def _route(self, method: str, path: str, params: dict[str, str]) -> httpx.Response:
        parts = path.strip("/").split("/")[1:]
        match method, parts:
            case "GET", ["products"]:
                return self._list(self.products.values(), params, path)
            case "GET", ["prices"]:
                found = [
                    p
                    for p in self.prices.values()
                    if p["product"] == params.get("product", p["product"])
                ]
                if "active" in params:
                    found = [p for p in found if str(p["active"]).lower() == params["active"]]
                return self._list(found, params, path)
            case "POST", ["customers"]:
                return self._create_customer(params)
            case "POST", ["checkout", "sessions"]:
                return self._create_session(params)
            case "GET", ["checkout", "sessions"]:
                return self._list_sessions(params, path)
            case "GET", ["checkout", "sessions", session_id]:
                if session_id not in self.sessions:
                    return _error(404, f"No such checkout.session: '{session_id}'")
                return self._json(self._session(session_id, _expanded(params, "line_items")))
            case "GET", ["checkout", "sessions", session_id, "line_items"]:
                return self._list(self.line_items.get(session_id, []), params, path)
            case "GET", ["subscriptions"]:
                found = [
                    s
                    for s in self.subscriptions.values()
                    if s["customer"] == params.get("customer")
                ]
                if params.get("status") != "all":
                    found = [s for s in found if s["status"] == params.get("status", s["status"])]
                    found = [
                        s for s in found if s["status"] not in ("canceled", "incomplete_expired")
                    ]
                return self._list([self._current_prices(s) for s in found], params, path)
            case "GET", ["charges", charge_id]:
                if charge_id not in self.charges:
                    return _error(404, f"No such charge: '{charge_id}'")
                return self._json(self.charges[charge_id])
            case "GET", ["refunds"]:
                found = [r for r in self.refunds.values() if r["charge"] == params.get("charge")]
                return self._list(found, params, path)
            case "GET", ["customers", customer_id]:
                if customer_id not in self.customers:
                    return _error(404, f"No such customer: '{customer_id}'")
                return self._json(self.customers[customer_id])
            case "POST", ["customers", customer_id]:
                settings = _nested(params, "invoice_settings")
                customer = self.customers[customer_id]
                customer["invoice_settings"].update(settings)
                return self._json(customer)
            case "POST", ["payment_intents"]:
                return self._create_intent(params)
            case "GET", ["payment_intents", intent_id]:
                if intent_id not in self.payment_intents:
                    return _error(404, f"No such payment_intent: '{intent_id}'")
                return self._json(self.payment_intents[intent_id])
            case "POST", ["payment_intents", intent_id, "cancel"]:
                self.payment_intents[intent_id]["status"] = "canceled"
                return self._json(self.payment_intents[intent_id])
            case "POST", ["billing_portal", "sessions"]:
                portal = build.portal_session(
                    self.new_id("bps"),
                    customer_id=params["customer"],
                    return_url=params["return_url"],
                    created=self.tick(),
                )
                self.portal_sessions[portal["id"]] = portal
                return self._json(portal)
        return _error(404, f"Unrecognized request URL ({method}: {path})")

    def _json(self, obj: Obj) -> httpx.Response:
        return httpx.Response(
            200, content=json.dumps(obj).encode(), headers={"request-id": "req_fake"}
        )

    def _list(self, objects: Iterable[Obj], params: dict[str, str], url: str) -> httpx.Response:
        """Newest first, ``limit`` (default 10, at most 100) per page, ``starting_after`` paging."""
        ordered = sorted(objects, key=lambda o: (o.get("created", 0), o["id"]), reverse=True)
        if "starting_after" in params:
            ids = [o["id"] for o in ordered]
            ordered = ordered[ids.index(params["starting_after"]) + 1 :]
        limit = min(int(params.get("limit", DEFAULT_PAGE)), MAX_PAGE)
        page = ordered[:limit]
        if _expanded(params, "data.line_items"):
            page = [self._session(o["id"], True) for o in page]
        body = {"object": "list", "data": page, "has_more": len(ordered) > limit, "url": url}
        return self._json(body)

    def _current_prices(self, subscription: Obj) -> Obj:
        """Items show their price as it is now (archived or not), as Stripe does."""
        current = copy.deepcopy(subscription)
        for item in current["items"]["data"]:
            item["price"] = copy.deepcopy(self.prices[item["price"]["id"]])
        return current

    def _session(self, session_id: str, with_line_items: bool) -> Obj:
        session = dict(self.sessions[session_id])
        if with_line_items:
            items = self.line_items[session_id]
            session["line_items"] = {
                "object": "list",
                "data": items,
                "has_more": False,
                "url": f"/v1/checkout/sessions/{session_id}/line_items",
            }
        return session

    def _list_sessions(self, params: dict[str, str], path: str) -> httpx.Response:
        found = list(self.sessions.values())
        for key in ("customer", "payment_intent", "status"):
            if key in params:
                found = [s for s in found if s[key] == params[key]]
        return self._list(found, params, path)

    def _create_customer(self, params: dict[str, str]) -> httpx.Response:
        metadata = _nested(params, "metadata")
        obj = build.customer(
            self.new_id("cus"), metadata=metadata, created=self.tick(), email=params.get("email")
        )
        obj["name"] = params.get("name")
        self.customers[obj["id"]] = obj
        return self._json(obj)

    def _create_session(self, params: dict[str, str]) -> httpx.Response:
        customer_id = params.get("customer")
        if customer_id is not None and customer_id not in self.customers:
            return _error(400, f"No such customer: '{customer_id}'")
        price_id = params["line_items[0][price]"]
        if price_id not in self.prices or not self.prices[price_id]["active"]:
            return _error(400, f"The price specified is inactive: {price_id}")
        price_obj = self.prices[price_id]
        quantity = int(params["line_items[0][quantity]"])
        divide_by = (price_obj["transform_quantity"] or {}).get("divide_by") or 1
        amount = price_obj["unit_amount"] * -(-quantity // divide_by)
        session = build.checkout_session(
            self.new_id("cs_test"),
            mode=params["mode"],
            customer_id=customer_id,
            client_reference_id=params.get("client_reference_id"),
            metadata=_nested(params, "metadata"),
            amount_total=amount,
            created=self.tick(),
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
        )
        self.sessions[session["id"]] = session
        self.line_items[session["id"]] = [
            build.line_item(
                self.new_id("li"), price_obj=price_obj, quantity=quantity, amount_total=amount
            )
        ]
        return self._json(session)


def _expanded(params: dict[str, str], field: str) -> bool:
    return any(key.startswith("expand[") and value == field for key, value in params.items())


def _nested(params: dict[str, str], name: str) -> dict[str, str]:
    prefix = f"{name}["
    return {
        key[len(prefix) : -1]: value
        for key, value in params.items()
        if key.startswith(prefix) and key.count("[") == 1
    }
