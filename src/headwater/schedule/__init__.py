"""Running unattended: cron and file-arrival triggers, one run at a time per project,
runs in child processes with a timeout, staleness checks and the daily summary."""
