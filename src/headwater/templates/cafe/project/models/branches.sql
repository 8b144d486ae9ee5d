/* headwater
materialized: incremental
strategy: merge
unique_key: branch_id
publish: true
description: Every branch that has sent a file.
checks:
  - unique: branch_id
  - unique: branch_name
  - not_null: branch_name
*/
select distinct branch_id, branch_name
from orders
