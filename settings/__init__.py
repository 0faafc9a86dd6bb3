"""Covey's bottom layer: where its state lives (the Covey home) and its one way to read
settings (shipped TOML, the user's file, the environment, the editor), used by every
package above it."""

from covey_settings.layers import EDITOR, Layered, layer, structure

__all__ = ["EDITOR", "Layered", "layer", "structure"]
