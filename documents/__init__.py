"""Generated documents (PDF): loan agreements, statements. Pure rendering, no I/O: bytes in memory."""
