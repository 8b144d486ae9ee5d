BEGIN;

CREATE TABLE IF NOT EXISTS "public"."_headwater_loads" (
  "table_name" VARCHAR(127),
  "max_batch" BIGINT,
  "snapshot_id" BIGINT,
  "run_id" BIGINT,
  "loaded_at" TIMESTAMP
);

CREATE TEMP TABLE "hw-stage-1" (
  "branch" VARCHAR(65535),
  "day" DATE,
  "total" DECIMAL(12,2)
);

COPY "hw-stage-1"
FROM 's3://hw-staging/headwater/run=00000007/daily_sales/'
IAM_ROLE 'arn:aws:iam::123456789012:role/headwater-copy'
FORMAT AS PARQUET;

CREATE TEMP TABLE "hw-dedup-1" AS
SELECT "branch", "day", "total"
FROM (
  SELECT "branch", "day", "total",
    ROW_NUMBER() OVER (PARTITION BY "branch", "day" ORDER BY "total") AS "hw_row"
  FROM "hw-stage-1"
) AS "ranked"
WHERE "hw_row" = 1;

SELECT COUNT(*) FROM "hw-dedup-1";

MERGE INTO "public"."daily_sales"
USING "hw-dedup-1"
ON ("public"."daily_sales"."branch" = "hw-dedup-1"."branch" OR ("public"."daily_sales"."branch" IS NULL AND "hw-dedup-1"."branch" IS NULL))
  AND ("public"."daily_sales"."day" = "hw-dedup-1"."day" OR ("public"."daily_sales"."day" IS NULL AND "hw-dedup-1"."day" IS NULL))
WHEN MATCHED THEN UPDATE SET "total" = "hw-dedup-1"."total"
WHEN NOT MATCHED THEN INSERT ("branch", "day", "total")
VALUES ("hw-dedup-1"."branch", "hw-dedup-1"."day", "hw-dedup-1"."total");

SELECT COUNT(*) FROM "public"."daily_sales";

DROP TABLE "hw-dedup-1";

DROP TABLE "hw-stage-1";

DELETE FROM "public"."_headwater_loads" WHERE "table_name" = 'daily_sales';

INSERT INTO "public"."_headwater_loads" ("table_name", "max_batch", "snapshot_id", "run_id", "loaded_at")
VALUES ('daily_sales', 3, 4003, 7, GETDATE());

COMMIT;
