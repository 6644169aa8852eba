"""The shop's own rules, with no database, no Stripe and no request: money, tax, ISBNs, the cart, the catalog,
settings, time stamps, page text."""
