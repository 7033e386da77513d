"""upstream stage of sysup (see DESIGN.md)."""
