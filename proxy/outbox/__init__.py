"""The workers that drain the ledger's outbox: one loop per topic in every gateway process."""
