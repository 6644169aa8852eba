"""The ledger: what the shop sold, holds, refunded and has on its shelves, in SQLite or a PostgreSQL every counter
shares. orders (lifecycle and holds), stock, refunds, reports, catalog_entries, audit; kiosk.db connects."""
