"""builds stage of sysup (see DESIGN.md)."""
