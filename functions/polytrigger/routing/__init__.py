"""Routes: which triggers lead to which actions on which syncs (the model, its validation, its loading)."""

from polytrigger.routing.load import load_routes
from polytrigger.routing.model import Route, Routes
from polytrigger.routing.parse import RoutesError, parse_routes

__all__ = ["Route", "Routes", "RoutesError", "load_routes", "parse_routes"]
