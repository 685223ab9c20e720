"""Opening a metered call: the in-flight cap, then a hold for the worst case, or a refusal.

The worst case is first priced with the prompt's cheap bound, which never
falls below its exact count (``pricing.prompts``). Only when the ledger
refuses that is the prompt counted exactly, in a worker thread, and held
again: so a call the org can afford at its exact count is never refused, and
a 402 names the exact prompt tokens, what they need and the largest
``max_tokens`` the balance affords.

Fail closed: a call that cannot be held (no credit, too many in flight, the
ledger unreachable) is refused with 402, 429 or 503 and never forwarded. What
happens after the hold is ``MeteredCall``'s: it ends exactly once. A call with
an idempotency key claims it with whichever hold is placed (a refused one claims
nothing); one whose key is taken is not opened: the ledger says by whom
(``KeyInUse``), and the relay answers for it (``proxy.call.idempotency``).
"""

import asyncio
import math

from ledger import (
    HoldOutcome,
    HoldRefused,
    KeyInUse,
    LedgerStore,
    LedgerUnavailable,
    LimitSource,
    RateLimited,
    ReplyKey,
    format_spus,
)
from ledger.checks import MAX_UNITS
from pricing import PricingPolicy, PromptTokens, affordable_max_tokens, worst_case_units
from proxy.auth import Principal
from proxy.call.endings import Endings
from proxy.call.in_flight import InFlightCap
from proxy.call.metered_call import MeteredCall
from proxy.call.policy import PolicySource
from proxy.call.renewal import HoldRenewal
from proxy.errors import ApiError, ledger_unavailable
from proxy.model_registry import ServedModel
from proxy.server import request_log
from proxy.server.metrics import Metrics


class Meter:
    def __init__(
        self,
        store: LedgerStore,
        pricing: PolicySource,
        *,
        hold_ttl_s: float,
        call_deadline_s: float,
        max_in_flight_per_org: int,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.pricing = pricing
        self.metrics = metrics
        self.in_flight_cap = InFlightCap(max_in_flight_per_org)
        self.endings = Endings()
        self.renewal = HoldRenewal(store, hold_ttl_s=hold_ttl_s)
        self._hold_ttl_s = hold_ttl_s
        self.call_deadline_s = call_deadline_s

    @property
    def policy(self) -> PricingPolicy:
        """The policy calls are charged at now."""
        return self.pricing.current

    async def open(
        self,
        principal: Principal,
        model: ServedModel,
        *,
        operation: str,
        source: str,
        prompt: PromptTokens,
        max_output_tokens: int,
        reply_key: ReplyKey | None = None,
    ) -> MeteredCall | KeyInUse:
        """Place the worst-case hold, or refuse with 402, 429 or 503 (fail closed)."""
        org_id = principal.org_id
        request_id = request_log.new_request_id()
        request_log.note(request_id=request_id, org_id=org_id, model=model.name)
        if not self.in_flight_cap.enter(org_id):
            raise ApiError(
                429,
                "Too many requests in flight for this organization"
                f" (limit {self.in_flight_cap.limit}).",
                error_type="rate_limit_error",
                code="too_many_in_flight",
                retry_after_s=self.in_flight_cap.retry_after_s(),
            )
        policy = self.policy
        try:
            needed = worst_case_units(prompt.bound, max_output_tokens, model.rates, policy)
            placed = (
                await self._hold(
                    principal, needed, request_id, reply_key, prompt.bound + max_output_tokens
                )
                if needed <= MAX_UNITS
                else None
            )
            if _exact_count_may_admit(placed):
                needed, placed = await self._hold_exactly(
                    principal, model, prompt, max_output_tokens, request_id, reply_key, policy
                )
        except BaseException:
            self.in_flight_cap.leave(org_id)
            raise
        if isinstance(placed, RateLimited):
            self.in_flight_cap.leave(org_id)
            self._refused(model, placed)
            raise _rate_limited(placed)
        if isinstance(placed, KeyInUse):
            self.in_flight_cap.leave(org_id)
            return placed
        self.renewal.add(request_id)
        overhead_s = request_log.elapsed_s()
        if overhead_s is not None:
            self.metrics.gateway_overhead_by.of(operation).observe(overhead_s)
        return MeteredCall(
            meter=self,
            principal=principal,
            model=model,
            request_id=request_id,
            operation=operation,
            source=source,
            hold_units=needed,
            deadline=asyncio.get_running_loop().time() + self.call_deadline_s,
            keeps_reply=reply_key is not None,
        )

    async def _hold(
        self,
        principal: Principal,
        units: int,
        request_id: str,
        reply_key: ReplyKey | None,
        tokens: int,
    ) -> HoldOutcome:
        """Hold ``units`` (``tokens`` at worst, for the key's tpm), claiming ``reply_key`` with
        them; a refused hold claims nothing."""
        try:
            return await self.store.hold(
                principal.org_id,
                units,
                request_id,
                self._hold_ttl_s,
                key_id=principal.key_id,
                tokens=tokens,
                reply_key=reply_key,
            )
        except LedgerUnavailable as error:
            raise ledger_unavailable() from error

    async def _hold_exactly(
        self,
        principal: Principal,
        model: ServedModel,
        prompt: PromptTokens,
        max_output_tokens: int,
        request_id: str,
        reply_key: ReplyKey | None,
        policy: PricingPolicy,
    ) -> tuple[int, HoldOutcome]:
        """The bound was refused by credit or tpm (or is beyond what one ledger operation
        carries): count the prompt exactly and hold for that (the balance may have grown
        meanwhile too); refused again by credit, answer 402 with the exact figures.

        Returns the units held and the ledger's answer.
        """
        prompt_tokens = await asyncio.to_thread(prompt.exact)
        needed = worst_case_units(prompt_tokens, max_output_tokens, model.rates, policy)
        if needed > MAX_UNITS:
            raise _beyond_any_balance(needed)
        placed = await self._hold(
            principal, needed, request_id, reply_key, prompt_tokens + max_output_tokens
        )
        if isinstance(placed, HoldRefused):
            self._refused(model, placed)
            raise _insufficient(placed, prompt_tokens, max_output_tokens, model, policy)
        return needed, placed

    def _refused(self, model: ServedModel, refusal: HoldRefused | RateLimited) -> None:
        source = refusal.limit_source.value
        self.metrics.refusals.labels(model=model.name, limit_source=source).inc()

    def past_deadline(self, what_happens: str) -> ApiError:
        """504 for a call cut at its total deadline; ``what_happens`` says what it is charged."""
        return ApiError(
            504,
            f"The call ran past this gateway's deadline of {self.call_deadline_s:g} s"
            f" (SPU_CALL_DEADLINE_S); {what_happens}.",
            error_type="api_error",
            code="call_deadline_exceeded",
        )

    @property
    def in_flight(self) -> int:
        """Calls between their hold and their ending, in this worker."""
        return self.in_flight_cap.total

    async def drain(self, timeout_s: float) -> None:
        """Wait for every detached settlement or release (graceful shutdown)."""
        await self.endings.drain(timeout_s)


def _exact_count_may_admit(placed: HoldOutcome | None) -> bool:
    """Whether a call refused at its prompt's bound may yet be admitted at its exact count:
    refused by credit (the org's or the key budget's), by tpm (the bound counts more tokens),
    or not asked at all (a bound beyond what one ledger operation carries). An rpm refusal
    counts calls, not tokens."""
    if placed is None or isinstance(placed, HoldRefused):
        return True
    return isinstance(placed, RateLimited) and placed.limit_source is LimitSource.KEY_TPM


NEVER_RETRY_HEADERS = {"x-should-retry": "false"}
"""Read by the openai and anthropic SDKs: do not retry a call that waiting cannot admit."""
RATE_WINDOW_S = 60


def _beyond_any_balance(needed_units: int) -> ApiError:
    """A worst case beyond what one ledger operation may carry: no balance could cover it."""
    return ApiError(
        402,
        f"This request's worst case ({format_spus(needed_units)} SPUs) is beyond what any"
        " balance can cover; lower max_tokens (or n).",
        error_type="insufficient_quota",
        code="insufficient_credits",
    )


def _insufficient(
    refusal: HoldRefused,
    prompt_tokens: int,
    max_output_tokens: int,
    model: ServedModel,
    policy: PricingPolicy,
) -> ApiError:
    """402: the org's credits, or the key's budget, cannot cover the call's worst case."""
    affordable = affordable_max_tokens(refusal.available_units, prompt_tokens, model.rates, policy)
    available, needed = format_spus(refusal.available_units), format_spus(refusal.needed_units)
    request = f"{prompt_tokens} prompt tokens + up to {max_output_tokens} output tokens"
    extra: dict[str, object] = {
        "limit_source": refusal.limit_source.value,
        "available_spus": available,
        "needed_spus": needed,
        "max_affordable_tokens": affordable,
    }
    if refusal.limit_source is LimitSource.KEY_BUDGET:
        resets_at = None if refusal.resets_at is None else refusal.resets_at.isoformat()
        resets = "it does not reset" if resets_at is None else f"it resets at {resets_at}"
        message = (
            f"This access key's budget is spent: {available} SPUs left in its window ({resets}),"
            f" {needed} SPUs needed for this request ({request})."
        )
        code = "key_budget_exceeded"
        extra["resets_at"] = resets_at
        nothing_fits = " Not even the prompt fits the key's budget now."
    else:
        message = (
            f"Insufficient SPU credits: {available} SPUs available, {needed} SPUs needed for"
            f" this request ({request})."
        )
        code = "insufficient_credits"
        nothing_fits = (
            " Not even the prompt is affordable now; buy credits or wait for your allowance."
        )
    advice = (
        f" The largest max_tokens you can afford now is {affordable}."
        if affordable > 0
        else nothing_fits
    )
    return ApiError(402, message + advice, error_type="insufficient_quota", code=code, extra=extra)


def _rate_limited(refusal: RateLimited) -> ApiError:
    """429 with the wait after which the key's minute admits the call, in the client's shape."""
    unit = "requests" if refusal.limit_source is LimitSource.KEY_RPM else "tokens"
    extra: dict[str, object] = {
        "limit_source": refusal.limit_source.value,
        "limit": refusal.limit,
        "used": refusal.used,
        "needed": refusal.needed,
    }
    if refusal.retry_after_ms is None:
        return ApiError(
            429,
            f"This request's worst case of {refusal.needed} {unit} is more than this access"
            f" key allows in a minute ({refusal.limit}): lower max_tokens or shorten the"
            " prompt.",
            error_type="rate_limit_error",
            code="rate_limit_exceeded",
            extra=extra,
            headers={"retry-after": str(RATE_WINDOW_S), **NEVER_RETRY_HEADERS},
        )
    wait_s = refusal.retry_after_ms / 1000
    extra["retry_after_s"] = wait_s
    return ApiError(
        429,
        f"This access key's limit of {refusal.limit} {unit} per minute is reached"
        f" ({refusal.used} used, {refusal.needed} needed); retry in {wait_s:g} s.",
        error_type="rate_limit_error",
        code="rate_limit_exceeded",
        extra=extra,
        headers={
            "retry-after": str(max(math.ceil(wait_s), 1)),
            "retry-after-ms": str(refusal.retry_after_ms),
        },
    )
