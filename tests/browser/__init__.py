"""Browser tests: staff using the inbox in Chromium, on SNORQ as deployed."""
