"""Tenants (client practices), their manifests, and staff assignments."""
