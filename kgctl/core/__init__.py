"""The bottom layer: errors, settings, provenance and the option type that every other layer
uses. It imports nothing else of kgctl."""
