"""`python -m sous.infra …`: the same commands as `sous infra …`, without the CLI's start-up."""

from sous.infra_cmd import infra_app

infra_app(prog_name="sous infra")
