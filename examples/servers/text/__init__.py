"""Text utilities (counts, slugs, digests, case): a stateless reference server."""
