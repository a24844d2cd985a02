"""The scrubber: named, versioned edits a coded encounter passes before any claim is built."""
