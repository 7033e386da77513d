"""build_requests stage of sysup (see DESIGN.md)."""
