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
  "city" VARCHAR(65535)
);

COPY "hw-stage-1"
FROM 's3://hw-staging/headwater/run=00000007/branches/'
IAM_ROLE 'arn:aws:iam::123456789012:role/headwater-copy'
FORMAT AS PARQUET;

SELECT COUNT(*) FROM "hw-stage-1";

DELETE FROM "public"."branches";

INSERT INTO "public"."branches" ("branch", "city")
SELECT "hw-stage-1"."branch", "hw-stage-1"."city"
FROM "hw-stage-1";

SELECT COUNT(*) FROM "public"."branches";

DROP TABLE "hw-stage-1";

DELETE FROM "public"."_headwater_loads" WHERE "table_name" = 'branches';

INSERT INTO "public"."_headwater_loads" ("table_name", "max_batch", "snapshot_id", "run_id", "loaded_at")
VALUES ('branches', 2, 4002, 7, GETDATE());

COMMIT;
