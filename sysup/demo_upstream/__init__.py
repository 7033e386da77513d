"""demo_upstream stage of sysup (see DESIGN.md)."""
