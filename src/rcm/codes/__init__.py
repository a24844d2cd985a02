"""Code sets (ICD-10-CM, CPT, HCPCS Level II, modifiers, POS, CARC, RARC) and the NCCI, MUE and sex/age
edits: global reference data versioned by effective date, loaded by ``rcm codes load``."""
