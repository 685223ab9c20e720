"""The pricing policy calls are charged at: the configured one, unless Stripe metadata sets it.

One object, built with the gateway: the meter reads it on every call, and
billing (in Stripe mode) overrides it when the catalogue's product metadata
carries ``markup`` or ``usd_per_spu``, so neither reaches into the other.
"""

from decimal import Decimal

from pricing import PricingPolicy


class PolicySource:
    def __init__(self, configured: PricingPolicy) -> None:
        self.configured = configured
        self.current = configured

    def override(self, *, markup: Decimal | None, usd_per_spu: Decimal | None) -> bool:
        """Charge at these numbers from now on (None keeps the configured one); True if changed."""
        policy = PricingPolicy(
            markup=self.configured.markup if markup is None else markup,
            usd_per_spu=self.configured.usd_per_spu if usd_per_spu is None else usd_per_spu,
        )
        changed = policy != self.current
        self.current = policy
        return changed
