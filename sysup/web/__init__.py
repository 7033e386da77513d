"""web stage of sysup (see DESIGN.md)."""
