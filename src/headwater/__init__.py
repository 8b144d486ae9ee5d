"""headwater: sources -> immutable lake -> SQL models with quality checks -> warehouse."""

__version__ = "0.1.0"
