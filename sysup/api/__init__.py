"""api stage of sysup (see DESIGN.md)."""
