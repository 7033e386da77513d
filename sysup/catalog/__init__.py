"""catalog stage of sysup (see DESIGN.md)."""
