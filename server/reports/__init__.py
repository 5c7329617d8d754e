"""The inspection report: gathered from the archive and the database, HTML and PDF."""
