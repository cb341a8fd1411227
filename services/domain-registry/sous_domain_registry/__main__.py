"""Run the domain registry: REST API and consumers in one process."""

from sous_domain_registry.serve import serve

serve()
