/* headwater
materialized: table
publish: true
description: Designs, latest values.
checks:
  - unique: design_id
*/
select design_id, design_name, file_location, file_name
from design
qualify row_number() over (partition by design_id order by last_updated desc) = 1
