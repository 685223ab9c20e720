"""The catalogue, read from Stripe product and price metadata.

``prices``, ``plans`` and ``credits`` are pure functions of the plain dicts
Stripe returns (what a price sells, what a subscription entitles to, what a
session bought and what a refund takes back); ``source`` loads and refreshes
the catalogue one process holds.
"""
