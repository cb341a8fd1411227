"""Sous ops console: a read model of the mesh and a live web UI."""
