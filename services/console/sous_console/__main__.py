"""`python -m sous_console`: serve the console."""

from sous_console.web.app import main

main()
