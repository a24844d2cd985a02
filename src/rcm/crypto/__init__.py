"""Field-level envelope encryption of PHI, key providers, blind indexes, rotation and crypto-shredding."""
