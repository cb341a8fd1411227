"""Sous scheduler: the brain of the mesh — order runs, DAGs, triggers and schedules."""
