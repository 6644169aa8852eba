"""Stripe: the gateway (the only `import stripe`), the words the kiosk writes into Stripe and reads back, the card
reader, and reconciling the ledger with Stripe."""
