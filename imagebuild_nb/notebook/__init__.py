"""The notebook layer: magics, the widget, rich displays."""
