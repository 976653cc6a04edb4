"""Tools for people and for the build: the `polytrigger` command line and the routes build step."""
