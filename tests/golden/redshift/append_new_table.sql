BEGIN;

CREATE TABLE IF NOT EXISTS "public"."_headwater_loads" (
  "table_name" VARCHAR(127),
  "max_batch" BIGINT,
  "snapshot_id" BIGINT,
  "run_id" BIGINT,
  "loaded_at" TIMESTAMP
);

CREATE TABLE IF NOT EXISTS "public"."events" (
  "flag" BOOLEAN,
  "small" SMALLINT,
  "n" INTEGER,
  "big" BIGINT,
  "price" DECIMAL(12,4),
  "ratio" DOUBLE PRECISION,
  "score" REAL,
  "label" VARCHAR(65535),
  "day" DATE,
  "at_time" TIME,
  "at" TIMESTAMP,
  "at_tz" TIMESTAMPTZ
);

CREATE TEMP TABLE "hw-stage-1" (
  "flag" BOOLEAN,
  "small" SMALLINT,
  "n" INTEGER,
  "big" BIGINT,
  "price" DECIMAL(12,4),
  "ratio" DOUBLE PRECISION,
  "score" REAL,
  "label" VARCHAR(65535),
  "day" DATE,
  "at_time" TIME,
  "at" TIMESTAMP,
  "at_tz" TIMESTAMPTZ
);

COPY "hw-stage-1"
FROM 's3://hw-staging/headwater/run=00000007/events/'
IAM_ROLE 'arn:aws:iam::123456789012:role/headwater-copy'
FORMAT AS PARQUET;

SELECT COUNT(*) FROM "hw-stage-1";

INSERT INTO "public"."events" ("flag", "small", "n", "big", "price", "ratio", "score", "label", "day", "at_time", "at", "at_tz")
SELECT "hw-stage-1"."flag", "hw-stage-1"."small", "hw-stage-1"."n", "hw-stage-1"."big", "hw-stage-1"."price", "hw-stage-1"."ratio", "hw-stage-1"."score", "hw-stage-1"."label", "hw-stage-1"."day", "hw-stage-1"."at_time", "hw-stage-1"."at", "hw-stage-1"."at_tz"
FROM "hw-stage-1";

SELECT COUNT(*) FROM "public"."events";

DROP TABLE "hw-stage-1";

DELETE FROM "public"."_headwater_loads" WHERE "table_name" = 'events';

INSERT INTO "public"."_headwater_loads" ("table_name", "max_batch", "snapshot_id", "run_id", "loaded_at")
VALUES ('events', 1, 4001, 7, GETDATE());

COMMIT;
