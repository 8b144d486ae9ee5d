"""Quality: per-model checks with severities, and PII policies with a leak check."""
