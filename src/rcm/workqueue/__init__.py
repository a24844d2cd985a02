"""Work queues: coding and billing work items on any subject (encounter, claim, remittance...), leased."""
