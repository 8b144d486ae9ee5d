"""The lake: raw zone (put-once objects), processed zone (Iceberg tables), quarantine."""
