"""Stripe's webhook: ``signature`` checks that an event is fresh and Stripe's, ``events`` handles
each event id once, ``outcomes`` names what handling it did."""
