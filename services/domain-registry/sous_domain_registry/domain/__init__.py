"""Pure core of the registry: loading, validating, compiling and diffing specs."""
