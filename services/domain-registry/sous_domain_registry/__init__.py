"""The domain registry: the catalog of the mesh and its REST front door."""
