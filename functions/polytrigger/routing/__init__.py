"""Routes: which triggers lead to which actions on which syncs.

`model` (`Route`, `Routes` and the index that matches a trigger without scanning every route),
`parse` (the whole file validated, every problem listed), `schedules` (a route's own schedule),
`chains` (routes that follow another sync's runs), `gates` (a route's `gate:`, filled per partition), `globs`
(key patterns matched in linear time, with named placeholders),
`near` (why the closest routes missed a trigger), `load` (YAML, or the build's validated cache),
`fields` (the checks the levels share), `durations` (the one syntax of every duration field),
`suggest` (did you mean: the known word closest to a misspelt one, for a refusal's end), `pauses`
(what a pause means for the routes that start the same sync: `validate`'s notes and warnings).
"""

from polytrigger.routing.load import load_routes
from polytrigger.routing.model import Route, Routes
from polytrigger.routing.parse import RoutesError, parse_routes

__all__ = ["Route", "Routes", "RoutesError", "load_routes", "parse_routes"]
