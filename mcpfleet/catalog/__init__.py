"""The server catalog: models, loader and JSON Schema."""
