"""Stripe billing: the catalogue, Checkout, the Billing Portal, webhooks and sync.

Loaded in Stripe mode only (``STRIPE_SECRET_KEY`` set): the gateway imports
``service`` and mounts its ``routes``. Local-only mode never imports this
package, stripe included, and mounts ``proxy.billing_stub`` instead.

- ``catalogue``: prices, plans and credits read from Stripe metadata (pure), and the
  catalogue the process holds (``source``);
- ``webhooks``: signature checks, each event handled once, and what handling did;
- ``checkout``, ``customers``, ``purchases``, ``subscriptions``, ``sync``: Stripe's side of
  a purchase, a plan and a reconciliation; ``client``: the Stripe client;
- ``service``: all of it for one process; ``routes``: the ``/billing`` routes.
"""
