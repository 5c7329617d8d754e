"""Live inspections in this media process: the registry, protocol, site checks, media relay."""
