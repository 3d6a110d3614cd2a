"""TOML presets shipped with ganforge (read with importlib.resources)."""
