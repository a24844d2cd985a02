"""One module per source layout; each returns a ``ParsedRelease`` (``rcm.codes.importers.base``)."""
