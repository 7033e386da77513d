"""imagebuilders stage of sysup (see DESIGN.md)."""
