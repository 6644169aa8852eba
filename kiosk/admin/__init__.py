"""The shop run from the staff screen: settings, the catalog edited on screen, the settings file, the PIN, and the
refund service."""
