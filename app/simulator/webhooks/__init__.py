"""The webhooks each simulated platform posts to SNORQ, built as the platform builds them."""
