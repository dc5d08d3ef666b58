"""End-to-end tests: SNORQ as deployed, against the platform simulator."""
