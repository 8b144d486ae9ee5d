/* headwater
materialized: table
publish: true
description: Staff with their department, latest values (SCD type 1).
checks:
  - unique: staff_id
  - not_null: [first_name, last_name, department_name, location, email_address]
*/
with staff_now as (
    select * from staff qualify row_number() over (partition by staff_id order by last_updated desc) = 1
),
department_now as (
    select * from department
    qualify row_number() over (partition by department_id order by last_updated desc) = 1
)
select
    s.staff_id,
    s.first_name,
    s.last_name,
    d.department_name,
    coalesce(d.location, '') as location,   -- nullable in the source, NOT NULL here
    s.email_address
from staff_now s
join department_now d using (department_id)
