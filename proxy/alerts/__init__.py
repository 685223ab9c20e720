"""Low-balance and auto-recharge alerts: signed JSON events POSTed to the org's URL."""
