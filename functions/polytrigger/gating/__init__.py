"""Gates: a route that starts its syncs once per complete partition (see docs/design-gates.md)."""
