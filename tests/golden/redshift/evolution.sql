BEGIN;

CREATE TABLE IF NOT EXISTS "public"."_headwater_loads" (
  "table_name" VARCHAR(127),
  "max_batch" BIGINT,
  "snapshot_id" BIGINT,
  "run_id" BIGINT,
  "loaded_at" TIMESTAMP
);

ALTER TABLE "public"."orders" ADD COLUMN "channel" VARCHAR(65535);

CREATE TEMP TABLE "hw-stage-1" (
  "id" INTEGER,
  "name" VARCHAR(65535),
  "amount" DECIMAL(10,2),
  "sold_at" TIMESTAMP,
  "channel" VARCHAR(65535)
);

COPY "hw-stage-1"
FROM 's3://hw-staging/headwater/run=00000007/orders/'
IAM_ROLE 'arn:aws:iam::123456789012:role/headwater-copy'
FORMAT AS PARQUET;

CREATE TEMP TABLE "hw-dedup-1" AS
SELECT "id", "name", "amount", "sold_at", "channel"
FROM (
  SELECT "id", "name", "amount", "sold_at", "channel",
    ROW_NUMBER() OVER (PARTITION BY "id" ORDER BY "name", "amount", "sold_at", "channel") AS "hw_row"
  FROM "hw-stage-1"
) AS "ranked"
WHERE "hw_row" = 1;

SELECT COUNT(*) FROM "hw-dedup-1";

MERGE INTO "public"."orders"
USING "hw-dedup-1"
ON ("public"."orders"."id" = "hw-dedup-1"."id" OR ("public"."orders"."id" IS NULL AND "hw-dedup-1"."id" IS NULL))
WHEN MATCHED THEN UPDATE SET "name" = "hw-dedup-1"."name", "amount" = CAST("hw-dedup-1"."amount" AS DECIMAL(12,2)), "sold_at" = "hw-dedup-1"."sold_at", "channel" = "hw-dedup-1"."channel", "legacy_code" = NULL
WHEN NOT MATCHED THEN INSERT ("id", "name", "amount", "sold_at", "channel")
VALUES (CAST("hw-dedup-1"."id" AS BIGINT), "hw-dedup-1"."name", CAST("hw-dedup-1"."amount" AS DECIMAL(12,2)), "hw-dedup-1"."sold_at", "hw-dedup-1"."channel");

SELECT COUNT(*) FROM "public"."orders";

DROP TABLE "hw-dedup-1";

DROP TABLE "hw-stage-1";

DELETE FROM "public"."_headwater_loads" WHERE "table_name" = 'orders';

INSERT INTO "public"."_headwater_loads" ("table_name", "max_batch", "snapshot_id", "run_id", "loaded_at")
VALUES ('orders', 5, 4005, 7, GETDATE());

COMMIT;
