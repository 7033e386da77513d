"""The HTTP surfaces, one Klein app each, composed into one resource."""
