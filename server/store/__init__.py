"""The database seam: SQLite today, one repository per aggregate as backends arrive."""
