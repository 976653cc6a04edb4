"""Tools for people and for the build: the `polytrigger` command line (`cli`: explain, validate, status,
redrive) and the routes build step (`routes_build`)."""
