"""The HIPAA access log (runtime side): record events in the caller's transaction, chain, search, export."""
