"""Shared mechanics of the platform: settings, devices and precision, Lightning helpers, backbones,
model artifacts, the results store and the batch-job runner. Verticals import from here; nothing here
imports a vertical."""
from vai.core.errors import VaiError

__all__ = ["VaiError"]
