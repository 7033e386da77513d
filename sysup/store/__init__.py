"""store stage of sysup (see DESIGN.md)."""
