"""augsens."""
