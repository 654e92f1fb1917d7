-- Orders, returns and cancellations at their latest version.
-- grain: one row per order_id
with validated as (

    select * from validated_orders

),

latest_version as (

    select *
    from validated
    qualify row_number() over (
        partition by order_id
        order by _partition_date desc, _source_file desc, _row_number desc
    ) = 1

)

select
    order_id,
    customer_id,
    ordered_at,
    amount,
    currency,
    quantity,
    segment,
    _partition_date as arrival_date
from latest_version
order by order_id
