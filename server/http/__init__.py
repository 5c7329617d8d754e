"""The web face: app factory, REST handlers by area, signalling socket, pages, OpenAPI."""
