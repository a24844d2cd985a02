"""Files holding PHI, encrypted in chunks (streaming AEAD), in PostgreSQL or a directory, behind one
interface."""
