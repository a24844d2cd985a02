"""FHIR R4 intake: practice systems POST Bundles to ``/fhir/r4``; entries become the same patient, coverage,
provider and encounter records as the JSON API, through the same services."""
