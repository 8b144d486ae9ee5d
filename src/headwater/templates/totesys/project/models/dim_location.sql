/* headwater
materialized: table
publish: true
description: Every address (not only delivery locations), latest values.
checks:
  - unique: location_id
*/
select
    address_id as location_id,
    address_line_1,
    address_line_2,
    district,
    city,
    postal_code,
    country,
    phone
from address
qualify row_number() over (partition by address_id order by last_updated desc) = 1
