"""vai: one shared model core, five verticals. See README.md."""

__version__ = "0.1.0"
